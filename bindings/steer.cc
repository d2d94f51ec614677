// N-API glue for the XDP steering program (class Steering), the real-server decapsulator
// (decapAttach/decapDetach) and XDP inspection (xdpQuery, xdpTestRun). Arguments are checked
// for shape only; native/io does the work and says what failed.
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>
#include "bindings.hpp"
#include "io/decap.hpp"
#include "io/steer.hpp"

namespace lvsd::bind {
namespace {

// Marks objects made by the Steering constructor, so that unwrap_steering can tell them apart.
const napi_type_tag kSteeringTag = {0x6c7673645f737465ull, 0x6572696e67000001ull};

// An exception from native/io as a JS Error with a stable code (and errno's name).
Napi::Error to_js(Napi::Env env, const std::exception& e) {
  if (const auto* io = dynamic_cast<const IoError*>(&e)) {
    Napi::Error err = error(env, io->lvs_code(), io->what());
    const int n = io->code().value();
    if (n > 0) {
      const char* name = strerrorname_np(n);
      if (name) err.Set("errno", Napi::String::New(env, name));
    }
    return err;
  }
  if (dynamic_cast<const std::invalid_argument*>(&e)) return error(env, "LVS_INVALID_ARGUMENT", e.what());
  return error(env, "LVS_BPF", e.what());
}

template <typename F>
auto guard(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw to_js(env, e);
  }
}

IpBytes address(Napi::Env env, const Napi::Value& v, const char* field) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw error(env, "LVS_INVALID_ADDRESS", std::string(field) + ": expected a Uint8Array of 4 or 16 bytes");
  auto a = v.As<Napi::Uint8Array>();
  if (a.ElementLength() != 4 && a.ElementLength() != 16)
    throw error(env, "LVS_INVALID_ADDRESS",
                std::string(field) + ": expected 4 or 16 bytes, got " + std::to_string(a.ElementLength()));
  IpBytes ip;
  ip.family = a.ElementLength() == 4 ? 4 : 6;
  std::memcpy(ip.b, a.Data(), a.ElementLength());
  return ip;
}

uint32_t u32(Napi::Env env, const Napi::Value& v, const char* field, uint32_t max = 0xffffffffu) {
  if (!v.IsNumber()) throw error(env, "LVS_INVALID_ARGUMENT", std::string(field) + ": expected a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= max) || d != double(uint64_t(d)))
    throw error(env, "LVS_INVALID_ARGUMENT", std::string(field) + ": expected an integer from 0 to " + std::to_string(max));
  return uint32_t(d);
}

std::string netns_arg(Napi::Env env, const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return "";
  if (!v.IsString()) throw error(env, "LVS_INVALID_ARGUMENT", "netns: expected a string");
  return v.As<Napi::String>();
}

XdpRequest mode_arg(Napi::Env env, const Napi::Value& v) {
  const std::string m = v.IsString() ? std::string(v.As<Napi::String>()) : "";
  if (m == "native") return XdpRequest::Native;
  if (m == "generic") return XdpRequest::Generic;
  if (m == "auto") return XdpRequest::Auto;
  throw error(env, "LVS_INVALID_ARGUMENT", "mode: expected \"native\", \"generic\" or \"auto\"");
}

Napi::Value test_run_result(Napi::Env env, const bpf::TestRun& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("action", Napi::Number::New(env, r.action));
  o.Set("frame", Napi::Buffer<uint8_t>::Copy(env, r.data.data(), r.data.size()));
  return o;
}

class SteeringWrap : public Napi::ObjectWrap<SteeringWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Steering",
                       {InstanceMethod("attach", &SteeringWrap::Attach),
                        InstanceMethod("detach", &SteeringWrap::Detach),
                        InstanceMethod("addService", &SteeringWrap::AddService),
                        InstanceMethod("delService", &SteeringWrap::DelService),
                        InstanceMethod("addNatReal", &SteeringWrap::AddNatReal),
                        InstanceMethod("delNatReal", &SteeringWrap::DelNatReal),
                        InstanceMethod("addLocal", &SteeringWrap::AddLocal),
                        InstanceMethod("delLocal", &SteeringWrap::DelLocal),
                        InstanceMethod("addPrefix", &SteeringWrap::AddPrefix),
                        InstanceMethod("delPrefix", &SteeringWrap::DelPrefix),
                        InstanceMethod("stats", &SteeringWrap::Stats),
                        InstanceMethod("mode", &SteeringWrap::Mode),
                        InstanceMethod("testRun", &SteeringWrap::TestRun),
                        InstanceMethod("close", &SteeringWrap::Close)});
  }

  // new Steering({netns?, maxEntries?})
  explicit SteeringWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SteeringWrap>(info) {
    Napi::Env env = info.Env();
    Steering::Options o;
    if (info.Length() > 0 && info[0].IsObject()) {
      const Napi::Object opts = info[0].As<Napi::Object>();
      o.netns = netns_arg(env, opts.Get("netns"));
      if (!opts.Get("maxEntries").IsUndefined()) o.max_entries = u32(env, opts.Get("maxEntries"), "maxEntries", 1u << 24);
      if (o.max_entries == 0) throw error(env, "LVS_INVALID_ARGUMENT", "maxEntries: expected at least 1");
    }
    s_ = guard(env, [&] { return std::make_unique<Steering>(o); });
    info.This().As<Napi::Object>().TypeTag(&kSteeringTag);
  }

  Steering* steering() const { return s_.get(); }

 private:
  Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint32_t ifindex = u32(env, info[0], "ifindex");
    const XdpRequest m = mode_arg(env, info[1]);
    const XdpMode got = guard(env, [&] { return s_->attach(ifindex, m); });
    return Napi::String::New(env, xdp_mode_name(got));
  }
  Napi::Value Detach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint32_t ifindex = u32(env, info[0], "ifindex");
    guard(env, [&] { s_->detach(ifindex); });
    return env.Undefined();
  }
  // (proto, port, addr)
  template <void (Steering::*F)(uint8_t, uint16_t, const IpBytes&)>
  Napi::Value Entry(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint8_t proto = uint8_t(u32(env, info[0], "proto", 255));
    const uint16_t port = uint16_t(u32(env, info[1], "port", 65535));
    const IpBytes a = address(env, info[2], "addr");
    guard(env, [&] { (s_.get()->*F)(proto, port, a); });
    return env.Undefined();
  }
  Napi::Value AddService(const Napi::CallbackInfo& info) { return Entry<&Steering::add_service>(info); }
  Napi::Value DelService(const Napi::CallbackInfo& info) { return Entry<&Steering::del_service>(info); }
  Napi::Value AddNatReal(const Napi::CallbackInfo& info) { return Entry<&Steering::add_nat_real>(info); }
  Napi::Value DelNatReal(const Napi::CallbackInfo& info) { return Entry<&Steering::del_nat_real>(info); }
  Napi::Value AddLocal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const IpBytes a = address(env, info[0], "addr");
    guard(env, [&] { s_->add_local(a); });
    return env.Undefined();
  }
  Napi::Value DelLocal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const IpBytes a = address(env, info[0], "addr");
    guard(env, [&] { s_->del_local(a); });
    return env.Undefined();
  }
  Napi::Value AddPrefix(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const IpBytes a = address(env, info[0], "addr");
    const uint8_t plen = uint8_t(u32(env, info[1], "prefixLength", a.family == 4 ? 32 : 128));
    guard(env, [&] { s_->add_prefix(a, plen); });
    return env.Undefined();
  }
  Napi::Value DelPrefix(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const IpBytes a = address(env, info[0], "addr");
    const uint8_t plen = uint8_t(u32(env, info[1], "prefixLength", a.family == 4 ? 32 : 128));
    guard(env, [&] { s_->del_prefix(a, plen); });
    return env.Undefined();
  }
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const Steering::Stats s = guard(env, [&] { return s_->stats(); });
    Napi::Object o = Napi::Object::New(env);
    o.Set("redirected", Napi::Number::New(env, double(s.redirected)));
    o.Set("passed", Napi::Number::New(env, double(s.passed)));
    o.Set("noSocket", Napi::Number::New(env, double(s.no_socket)));
    o.Set("parseFailed", Napi::Number::New(env, double(s.parse_failed)));
    return o;
  }
  // mode(ifindex) -> 'native' | 'generic' | null (not attached by this steering)
  Napi::Value Mode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const XdpMode m = s_->mode(u32(env, info[0], "ifindex"));
    return m == XdpMode::None ? env.Null() : Napi::String::New(env, xdp_mode_name(m));
  }
  // testRun(frame, ifindex, queue?) -> {action, frame}
  Napi::Value TestRun(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw error(env, "LVS_INVALID_ARGUMENT", "frame: expected a Uint8Array");
    auto f = info[0].As<Napi::Uint8Array>();
    const uint32_t ifindex = u32(env, info[1], "ifindex");
    const uint32_t queue = info.Length() > 2 && !info[2].IsUndefined() ? u32(env, info[2], "queue") : 0;
    const bpf::TestRun r =
        guard(env, [&] { return s_->test_run(f.Data(), uint32_t(f.ElementLength()), ifindex, queue); });
    return test_run_result(env, r);
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    s_->close();
    return info.Env().Undefined();
  }

  std::unique_ptr<Steering> s_;
};

std::vector<IpBytes> address_list(Napi::Env env, const Napi::Value& v) {
  if (!v.IsArray()) throw error(env, "LVS_INVALID_ARGUMENT", "vips: expected an array of addresses");
  const Napi::Array arr = v.As<Napi::Array>();
  std::vector<IpBytes> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(address(env, arr.Get(i), "vips[]"));
  return out;
}

// decapAttach(netns, ifindex, vips, mode) -> 'native' | 'generic'
Napi::Value DecapAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string ns = netns_arg(env, info[0]);
  const uint32_t ifindex = u32(env, info[1], "ifindex");
  const std::vector<IpBytes> vips = address_list(env, info[2]);
  const XdpRequest m = mode_arg(env, info[3]);
  const XdpMode got = guard(env, [&] { return decap_attach(ns, ifindex, vips, m); });
  return Napi::String::New(env, xdp_mode_name(got));
}

// decapDetach(netns, ifindex) -> whether our program was removed
Napi::Value DecapDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string ns = netns_arg(env, info[0]);
  const uint32_t ifindex = u32(env, info[1], "ifindex");
  return Napi::Boolean::New(env, guard(env, [&] { return decap_detach(ns, ifindex); }));
}

// xdpQuery(netns, ifindex) -> {id, name, mode} | null
Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string ns = netns_arg(env, info[0]);
  const uint32_t ifindex = u32(env, info[1], "ifindex");
  const auto p = guard(env, [&] { return xdp_program(ns, ifindex); });
  if (!p) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Napi::Number::New(env, p->id));
  o.Set("name", Napi::String::New(env, p->name));
  o.Set("mode", Napi::String::New(env, p->mode == XdpMode::None ? "other" : xdp_mode_name(p->mode)));
  return o;
}

// xdpTestRun(netns, ifindex, frame, queue?) -> {action, frame} | null (no program attached)
Napi::Value XdpTestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string ns = netns_arg(env, info[0]);
  const uint32_t ifindex = u32(env, info[1], "ifindex");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw error(env, "LVS_INVALID_ARGUMENT", "frame: expected a Uint8Array");
  auto f = info[2].As<Napi::Uint8Array>();
  const uint32_t queue = info.Length() > 3 && !info[3].IsUndefined() ? u32(env, info[3], "queue") : 0;
  const auto r = guard(env, [&] { return xdp_test_run(ns, ifindex, f.Data(), uint32_t(f.ElementLength()), queue); });
  if (!r) return env.Null();
  return test_run_result(env, *r);
}

}  // namespace

void register_steering(Napi::Env env, Napi::Object exports) {
  exports.Set("Steering", SteeringWrap::Init(env));
  exports.Set("decapAttach", Napi::Function::New(env, DecapAttach));
  exports.Set("decapDetach", Napi::Function::New(env, DecapDetach));
  exports.Set("xdpQuery", Napi::Function::New(env, XdpQuery));
  exports.Set("xdpTestRun", Napi::Function::New(env, XdpTestRun));
}

Steering* unwrap_steering(Napi::Value v) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kSteeringTag))
    throw Napi::TypeError::New(v.Env(), "io.steering: expected a Steering object");
  return SteeringWrap::Unwrap(v.As<Napi::Object>())->steering();
}

}  // namespace lvsd::bind
