// PLACEHOLDER (helper "host" replaces this file).
#include "bindings.hpp"
namespace lvsd::bind {
void register_host(Napi::Env, Napi::Object) {}
}  // namespace lvsd::bind
