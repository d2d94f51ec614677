// What the binding files share. addon.cc owns the Dataplane object; steer.cc the XDP
// steering program and the real-server decapsulator; host.cc the host's network state
// (netlink: links, addresses, routes, neighbours) and raw frames. Each registers its exports.
#pragma once
#include <napi.h>
#include <string>

namespace lvsd {
class Steering;
}

namespace lvsd::bind {

void register_steering(Napi::Env env, Napi::Object exports);  // bindings/steer.cc
void register_host(Napi::Env env, Napi::Object exports);      // bindings/host.cc
void register_bench(Napi::Env env, Napi::Object exports);     // bindings/bench.cc

// The native Steering behind a JS Steering object; throws a TypeError for anything else.
Steering* unwrap_steering(Napi::Value v);

// An Error with a stable `code` (LVS_*), and errno's name as `errno` when one applies.
inline Napi::Error error(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

}  // namespace lvsd::bind
