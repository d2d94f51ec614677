// N-API glue for the benchmark tools of native/io/gen.hpp: benchGenerate (a packet generator
// run on a pool thread, answered with a Promise), BenchSink (the counting XDP sink) and
// BenchResponder (a tiny HTTP server in a namespace). Shapes are checked here; native/io does
// the work and says what failed.
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include "bindings.hpp"
#include "io/gen.hpp"

namespace lvsd::bind {
namespace {

Napi::Error io_error(Napi::Env env, const char* code, int err, const std::string& message) {
  Napi::Error e = error(env, code, message);
  if (err > 0) {
    const char* name = strerrorname_np(err);
    if (name) e.Set("errno", Napi::String::New(env, name));
  }
  return e;
}

template <typename F>
auto guard(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const IoError& e) {
    throw io_error(env, e.lvs_code(), e.code().value(), e.what());
  } catch (const std::exception& e) {
    throw error(env, "LVS_IO_INIT", e.what());
  }
}

std::string string_arg(Napi::Env env, const Napi::Value& v, const char* field, bool optional) {
  if (optional && (v.IsUndefined() || v.IsNull())) return "";
  if (!v.IsString()) throw error(env, "LVS_INVALID_ARGUMENT", std::string(field) + ": expected a string");
  return v.As<Napi::String>();
}

double number_arg(Napi::Env env, const Napi::Value& v, const char* field, double min, double max, bool integer) {
  if (!v.IsNumber()) throw error(env, "LVS_INVALID_ARGUMENT", std::string(field) + ": expected a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || (integer && d != double(int64_t(d))))
    throw error(env, "LVS_INVALID_ARGUMENT", std::string(field) + ": expected " + (integer ? "an integer" : "a number") +
                                                 " from " + std::to_string(min) + " to " + std::to_string(max));
  return d;
}

XdpRequest mode_arg(Napi::Env env, const Napi::Value& v) {
  if (v.IsUndefined()) return XdpRequest::Auto;
  const std::string m = v.IsString() ? std::string(v.As<Napi::String>()) : "";
  if (m == "native") return XdpRequest::Native;
  if (m == "generic") return XdpRequest::Generic;
  if (m == "auto") return XdpRequest::Auto;
  throw error(env, "LVS_INVALID_ARGUMENT", "mode: expected \"native\", \"generic\" or \"auto\"");
}

// benchGenerate({netns?, ifname, frames, seconds?, count?, batch?, cpu?})
//   -> Promise<{sent, failed, calls, seconds}>
class GenerateWorker : public Napi::AsyncWorker {
 public:
  GenerateWorker(Napi::Env env, bench::GenOptions o)
      : Napi::AsyncWorker(env, "lvsd-bench-generate"), o_(std::move(o)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      r_ = bench::generate(o_);
    } catch (const IoError& e) {
      code_ = e.lvs_code();
      errno_ = e.code().value();
      SetError(e.what());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("sent", Napi::Number::New(env, double(r_.sent)));
    o.Set("failed", Napi::Number::New(env, double(r_.failed)));
    o.Set("calls", Napi::Number::New(env, double(r_.calls)));
    o.Set("seconds", Napi::Number::New(env, r_.seconds));
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(io_error(Env(), code_, errno_, e.Message()).Value()); }

 private:
  bench::GenOptions o_;
  bench::GenResult r_;
  const char* code_ = "LVS_IO_INIT";
  int errno_ = 0;
  Napi::Promise::Deferred deferred_;
};

Napi::Value BenchGenerate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw error(env, "LVS_INVALID_ARGUMENT", "benchGenerate: expected an options object");
  const Napi::Object a = info[0].As<Napi::Object>();
  bench::GenOptions o;
  o.netns = string_arg(env, a.Get("netns"), "netns", true);
  o.ifname = string_arg(env, a.Get("ifname"), "ifname", false);
  const Napi::Value frames = a.Get("frames");
  if (!frames.IsArray()) throw error(env, "LVS_INVALID_ARGUMENT", "frames: expected an array of Uint8Array");
  const Napi::Array list = frames.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const Napi::Value f = list.Get(i);
    if (!f.IsTypedArray() || f.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw error(env, "LVS_INVALID_ARGUMENT", "frames[" + std::to_string(i) + "]: expected a Uint8Array");
    const auto u = f.As<Napi::Uint8Array>();
    o.frames.emplace_back(u.Data(), u.Data() + u.ByteLength());  // copied: the thread outlives the call
  }
  if (!a.Get("seconds").IsUndefined()) o.seconds = number_arg(env, a.Get("seconds"), "seconds", 0, 86400, false);
  if (!a.Get("count").IsUndefined()) o.count = uint64_t(number_arg(env, a.Get("count"), "count", 0, 9007199254740991.0, true));
  if (!a.Get("batch").IsUndefined()) o.batch = uint32_t(number_arg(env, a.Get("batch"), "batch", 1, 1024, true));
  if (!a.Get("cpu").IsUndefined()) o.cpu = int(number_arg(env, a.Get("cpu"), "cpu", -1, 1023, true));
  auto* w = new GenerateWorker(env, std::move(o));  // deletes itself after OnOK/OnError
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

class SinkWrap : public Napi::ObjectWrap<SinkWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "BenchSink",
                       {InstanceMethod("attach", &SinkWrap::Attach), InstanceMethod("count", &SinkWrap::Count),
                        InstanceMethod("close", &SinkWrap::Close)});
  }
  explicit SinkWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SinkWrap>(info) {}

 private:
  // attach(netns, ifindex, mode?) -> 'native' | 'generic'
  Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string ns = string_arg(env, info[0], "netns", true);
    const uint32_t ifindex = uint32_t(number_arg(env, info[1], "ifindex", 1, 0xffffffffu, true));
    const XdpRequest m = mode_arg(env, info[2]);
    const XdpMode got = guard(env, [&] { return sink_.attach(ns, ifindex, m); });
    return Napi::String::New(env, xdp_mode_name(got));
  }
  // count() -> {packets, bytes, foreign, passed}
  Napi::Value Count(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const bench::SinkCounts c = guard(env, [&] { return sink_.count(); });
    Napi::Object o = Napi::Object::New(env);
    o.Set("packets", Napi::Number::New(env, double(c.packets)));
    o.Set("bytes", Napi::Number::New(env, double(c.bytes)));
    o.Set("foreign", Napi::Number::New(env, double(c.foreign)));
    o.Set("passed", Napi::Number::New(env, double(c.passed)));
    return o;
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    sink_.close();
    return info.Env().Undefined();
  }

  bench::BenchSink sink_;
};

class ResponderWrap : public Napi::ObjectWrap<ResponderWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "BenchResponder",
                       {InstanceMethod("stats", &ResponderWrap::Stats), InstanceMethod("close", &ResponderWrap::Close)});
  }
  // new BenchResponder({netns?, port, body, ipv6?})
  explicit ResponderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ResponderWrap>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw error(env, "LVS_INVALID_ARGUMENT", "BenchResponder: expected an options object");
    const Napi::Object a = info[0].As<Napi::Object>();
    const std::string ns = string_arg(env, a.Get("netns"), "netns", true);
    const uint16_t port = uint16_t(number_arg(env, a.Get("port"), "port", 1, 65535, true));
    const std::string body = string_arg(env, a.Get("body"), "body", false);
    const bool v6 = a.Get("ipv6").IsBoolean() && a.Get("ipv6").As<Napi::Boolean>().Value();
    r_ = guard(env, [&] { return std::make_unique<bench::HttpResponder>(ns, port, body, v6); });
  }

 private:
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("responses", Napi::Number::New(env, r_ ? double(r_->responses()) : 0));
    o.Set("aborted", Napi::Number::New(env, r_ ? double(r_->aborted()) : 0));
    return o;
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (r_) r_->stop();
    return info.Env().Undefined();
  }

  std::unique_ptr<bench::HttpResponder> r_;
};

}  // namespace

void register_bench(Napi::Env env, Napi::Object exports) {
  exports.Set("benchGenerate", Napi::Function::New(env, BenchGenerate));
  exports.Set("BenchSink", SinkWrap::Init(env));
  exports.Set("BenchResponder", ResponderWrap::Init(env));
}

}  // namespace lvsd::bind
