// PLACEHOLDER (helper "xdp" replaces this file).
#include "bindings.hpp"
namespace lvsd::bind {
void register_steering(Napi::Env, Napi::Object) {}
Steering* unwrap_steering(Napi::Value v) { throw Napi::TypeError::New(v.Env(), "steering not built yet"); }
}  // namespace lvsd::bind
