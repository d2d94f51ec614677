// N-API glue for the host's network state (native/io/netlink.hpp, native/io/raw.hpp):
// exports.host = {links, addresses, addAddress, delAddress, routeGet, neighbours, resolve,
// watchNeighbours, sendFrame, sysctl, enterNetns, vrrpOpen}. Every function takes the network namespace first
// ('' = the process's own) and makes its sockets inside it. Validation lives in
// src/host/host.ts; this file moves arguments across and turns failures into coded errors.
#include <napi.h>
#include <sys/socket.h>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>
#include "bindings.hpp"
#include "io/netlink.hpp"
#include "io/netns.hpp"
#include "io/raw.hpp"
#include "io/vrrp_sock.hpp"

namespace lvsd::bind {
namespace {

using host::HostError;
using host::IpAddr;
using host::Neighbour;

// errno's symbolic name for the errors host operations meet (strerrorname_np needs glibc 2.32,
// older than some hosts a prebuilt addon may run on).
const char* errno_name(int err) {
  switch (err) {
#define E(x) \
  case x:    \
    return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(EBADF) E(EAGAIN) E(ENOMEM) E(EACCES)
    E(EBUSY) E(EEXIST) E(ENODEV) E(ENOTDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOSPC) E(EROFS)
    E(ERANGE) E(ENOTSUP) E(EAFNOSUPPORT) E(EADDRINUSE) E(EADDRNOTAVAIL) E(ENETDOWN) E(ENETUNREACH)
    E(ENOBUFS) E(EHOSTUNREACH) E(EMSGSIZE) E(EPROTONOSUPPORT) E(ETIMEDOUT) E(ECONNREFUSED)
#undef E
    default:
      return nullptr;
  }
}

Napi::Error coded(Napi::Env env, const char* code, const std::string& message, int err) {
  Napi::Error e = error(env, code, message);
  if (err > 0) {
    const char* name = errno_name(err);
    e.Set("errno", Napi::String::New(env, name ? std::string(name) : "E" + std::to_string(err)));
  }
  return e;
}

// Run `f` inside the namespace `ns`; native failures become coded JS errors.
template <typename F>
auto in_netns(Napi::Env env, const std::string& ns, F&& f) -> decltype(f()) {
  std::optional<NetnsScope> scope;
  try {
    scope.emplace(ns);
  } catch (const std::system_error& e) {
    throw coded(env, "LVS_NETNS", "network namespace \"" + ns + "\": " + e.what(), e.code().value());
  }
  try {
    return f();
  } catch (const HostError& e) {
    throw coded(env, e.code(), e.what(), e.err());
  } catch (const std::system_error& e) {
    throw coded(env, "LVS_HOST", e.what(), e.code().value());
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw coded(env, "LVS_HOST", e.what(), 0);
  }
}

std::string netns_arg(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "netns: expected a string ('' for this namespace)");
  return info[0].As<Napi::String>();
}

uint32_t u32_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + ": expected a number");
  return info[i].As<Napi::Number>().Uint32Value();
}

IpAddr addr_arg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(info.Env(), "address: expected a Uint8Array of 4 or 16 bytes");
  auto a = info[i].As<Napi::Uint8Array>();
  if (a.ByteLength() != 4 && a.ByteLength() != 16)
    throw Napi::TypeError::New(info.Env(), "address: expected 4 or 16 bytes, got " + std::to_string(a.ByteLength()));
  return IpAddr::from(a.Data(), a.ByteLength());
}

Napi::Value bytes(Napi::Env env, const IpAddr& a) {
  auto out = Napi::Uint8Array::New(env, a.len);
  std::memcpy(out.Data(), a.b, a.len);
  return out;
}

std::string mac_text(const uint8_t* m) {
  char s[18];
  std::snprintf(s, sizeof s, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return s;
}

Napi::Object neighbour_object(Napi::Env env, const Neighbour& n, bool with_deleted) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ifindex", Napi::Number::New(env, n.ifindex));
  o.Set("address", bytes(env, n.address));
  o.Set("mac", n.has_mac ? Napi::Value(Napi::String::New(env, mac_text(n.mac))) : env.Null());
  o.Set("state", Napi::Number::New(env, n.state));
  if (with_deleted) o.Set("deleted", Napi::Boolean::New(env, n.deleted));
  return o;
}

// links(netns) -> [{ifindex, name, mac, mtu, up, rxQueues, kind, xdpProgId}]
Napi::Value Links(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto ls = in_netns(env, netns_arg(info), [] { return host::links(); });
  Napi::Array out = Napi::Array::New(env, ls.size());
  for (uint32_t i = 0; i < ls.size(); ++i) {
    const host::Link& l = ls[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("ifindex", Napi::Number::New(env, l.ifindex));
    o.Set("name", Napi::String::New(env, l.name));
    o.Set("mac", Napi::String::New(env, l.has_mac ? mac_text(l.mac) : ""));
    o.Set("mtu", Napi::Number::New(env, l.mtu));
    o.Set("up", Napi::Boolean::New(env, l.up));
    o.Set("rxQueues", Napi::Number::New(env, l.rx_queues));
    o.Set("kind", Napi::String::New(env, l.kind));
    o.Set("xdpProgId", Napi::Number::New(env, l.xdp_prog_id));
    out.Set(i, o);
  }
  return out;
}

// addresses(netns) -> [{ifindex, address, prefixLength, flags}]
Napi::Value Addresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto as = in_netns(env, netns_arg(info), [] { return host::addresses(); });
  Napi::Array out = Napi::Array::New(env, as.size());
  for (uint32_t i = 0; i < as.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("ifindex", Napi::Number::New(env, as[i].ifindex));
    o.Set("address", bytes(env, as[i].address));
    o.Set("prefixLength", Napi::Number::New(env, as[i].prefix_len));
    o.Set("flags", Napi::Number::New(env, as[i].flags));
    out.Set(i, o);
  }
  return out;
}

// addAddress(netns, ifindex, address, prefixLength, nodad)
Napi::Value AddAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string ns = netns_arg(info);
  const uint32_t ifindex = u32_arg(info, 1, "ifindex");
  const IpAddr a = addr_arg(info, 2);
  const uint32_t plen = u32_arg(info, 3, "prefixLength");
  const bool nodad = info[4].IsBoolean() && info[4].As<Napi::Boolean>().Value();
  in_netns(env, ns, [&] { host::add_address(ifindex, a, uint8_t(plen), nodad); });
  return env.Undefined();
}

// delAddress(netns, ifindex, address, prefixLength)
Napi::Value DelAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string ns = netns_arg(info);
  const uint32_t ifindex = u32_arg(info, 1, "ifindex");
  const IpAddr a = addr_arg(info, 2);
  const uint32_t plen = u32_arg(info, 3, "prefixLength");
  in_netns(env, ns, [&] { host::del_address(ifindex, a, uint8_t(plen)); });
  return env.Undefined();
}

// routeGet(netns, address) -> {ifindex, gateway, source, type}
Napi::Value RouteGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string ns = netns_arg(info);
  const IpAddr a = addr_arg(info, 1);
  const host::Route r = in_netns(env, ns, [&] { return host::route_get(a); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("ifindex", Napi::Number::New(env, r.ifindex));
  o.Set("gateway", r.has_gateway ? bytes(env, r.gateway) : env.Null());
  o.Set("source", r.has_source ? bytes(env, r.source) : env.Null());
  o.Set("type", Napi::Number::New(env, r.type));
  return o;
}

// neighbours(netns) -> [{ifindex, address, mac, state}]
Napi::Value Neighbours(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto ns = in_netns(env, netns_arg(info), [] { return host::neighbours(); });
  Napi::Array out = Napi::Array::New(env, ns.size());
  for (uint32_t i = 0; i < ns.size(); ++i) out.Set(i, neighbour_object(env, ns[i], false));
  return out;
}

// resolve(netns, ifindex, address)
Napi::Value Resolve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string ns = netns_arg(info);
  const uint32_t ifindex = u32_arg(info, 1, "ifindex");
  const IpAddr a = addr_arg(info, 2);
  in_netns(env, ns, [&] { host::resolve(ifindex, a); });
  return env.Undefined();
}

// sendFrame(netns, ifindex, frame)
Napi::Value SendFrame(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string ns = netns_arg(info);
  const uint32_t ifindex = u32_arg(info, 1, "ifindex");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "frame: expected a Uint8Array");
  auto f = info[2].As<Napi::Uint8Array>();
  std::vector<uint8_t> frame(f.Data(), f.Data() + f.ByteLength());
  in_netns(env, ns, [&] { host::send_frame(ifindex, frame.data(), frame.size()); });
  return env.Undefined();
}

// sysctl(netns, key, value?) -> the value read, or the previous value when writing
Napi::Value Sysctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string ns = netns_arg(info);
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "key: expected a string");
  const std::string key = info[1].As<Napi::String>();
  const bool write = info.Length() > 2 && info[2].IsString();
  const std::string value = write ? std::string(info[2].As<Napi::String>()) : std::string();
  const std::string out = in_netns(env, ns, [&] { return write ? host::sysctl_write(key, value) : host::sysctl_read(key); });
  return Napi::String::New(env, out);
}

// ---------------------------------------------------------------------------------------------
// watchNeighbours(netns, onChange(events, error?)) -> {close()}
//
// A native thread reads the subscription and hands each batch to JavaScript with one
// thread-safe-function call. The function is unreferenced, so a watch never keeps the process
// alive; it runs until close() or the environment's teardown, whichever comes first (a dropped
// handle does not stop it). close() joins the thread.

struct Batch {
  std::vector<Neighbour> events;
  std::string error;  // the watch failed and stopped
};

void Deliver(Napi::Env env, Napi::Function cb, std::nullptr_t*, Batch* b) {
  std::unique_ptr<Batch> batch(b);
  if (env == nullptr || cb == nullptr) return;  // teardown: just free the batch
  Napi::Array arr = Napi::Array::New(env, batch->events.size());
  for (uint32_t i = 0; i < batch->events.size(); ++i) arr.Set(i, neighbour_object(env, batch->events[i], true));
  if (batch->error.empty()) {
    cb.Call({arr});
  } else {
    cb.Call({arr, error(env, "LVS_NETLINK", batch->error).Value()});
  }
}

using WatchTsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, Batch, Deliver>;

class Watch {
 public:
  static std::shared_ptr<Watch> start(Napi::Env env, std::unique_ptr<host::NeighbourMonitor> mon, Napi::Function cb) {
    auto w = std::shared_ptr<Watch>(new Watch());
    w->env_ = env;
    w->mon_ = std::move(mon);
    w->tsfn_ = WatchTsfn::New(env, cb, "lvsd-neighbours", 0, 1);
    w->tsfn_.Unref(env);
    w->hook_ = new std::shared_ptr<Watch>(w);
    napi_add_env_cleanup_hook(env, &Watch::Teardown, w->hook_);
    Watch* self = w.get();
    w->thread_ = std::thread([self] { self->run(); });
    return w;
  }

  // From JavaScript: idempotent.
  void close() {
    if (closed_) return;
    auto* hook = hook_;
    hook_ = nullptr;
    stop();
    if (hook) {
      napi_remove_env_cleanup_hook(env_, &Watch::Teardown, hook);
      delete hook;  // may drop the last reference but one: the caller holds another
    }
  }

 private:
  Watch() = default;

  static void Teardown(void* arg) {
    auto* hook = static_cast<std::shared_ptr<Watch>*>(arg);
    (*hook)->hook_ = nullptr;
    (*hook)->stop();
    delete hook;
  }

  void stop() {
    if (closed_) return;
    closed_ = true;
    mon_->stop();
    if (thread_.joinable()) thread_.join();
    tsfn_.Release();
  }

  void run() {
    std::vector<Neighbour> batch;
    try {
      while (mon_->next(batch)) {
        auto* b = new Batch{std::move(batch), {}};
        batch = {};
        if (tsfn_.NonBlockingCall(b) != napi_ok) {
          delete b;
          return;
        }
      }
    } catch (const std::exception& e) {
      auto* b = new Batch{{}, std::string("neighbour watch stopped: ") + e.what()};
      if (tsfn_.NonBlockingCall(b) != napi_ok) delete b;
    }
  }

  napi_env env_ = nullptr;
  std::unique_ptr<host::NeighbourMonitor> mon_;
  WatchTsfn tsfn_;
  std::thread thread_;
  std::shared_ptr<Watch>* hook_ = nullptr;
  bool closed_ = false;
};

Napi::Value WatchNeighbours(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string ns = netns_arg(info);
  if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "onChange: expected a function");
  auto mon = in_netns(env, ns, [] { return std::make_unique<host::NeighbourMonitor>(); });
  std::shared_ptr<Watch> w = Watch::start(env, std::move(mon), info[1].As<Napi::Function>());
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("close", Napi::Function::New(env, [w](const Napi::CallbackInfo& ci) {
    w->close();
    return ci.Env().Undefined();
  }, "close"));
  return handle;
}

// ---------------------------------------------------------------------------------------------
// vrrpOpen(netns, ifname, family, onPackets(packets, error?)) -> {ifindex, send(payload, source),
// close()}
//
// A raw socket for IP protocol 112 (native/io/vrrp_sock.hpp) opened in `netns`. A native thread
// waits on it and hands every packet already queued to JavaScript in one thread-safe-function
// call: [{source, destination, ttl, payload, truncated}]. Unreferenced like watchNeighbours: the
// socket never keeps the process alive; close() (or the environment's teardown) stops the
// thread and closes the socket. After a socket failure the thread stops, after one last call
// with no packets and the error.

struct VrrpBatch {
  std::vector<host::VrrpPacket> packets;
  std::string error;
  int err = 0;
};

void DeliverVrrp(Napi::Env env, Napi::Function cb, std::nullptr_t*, VrrpBatch* b) {
  std::unique_ptr<VrrpBatch> batch(b);
  if (env == nullptr || cb == nullptr) return;
  Napi::Array arr = Napi::Array::New(env, batch->packets.size());
  for (uint32_t i = 0; i < batch->packets.size(); ++i) {
    const host::VrrpPacket& p = batch->packets[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("source", p.source.len ? bytes(env, p.source) : env.Null());
    o.Set("destination", p.destination.len ? bytes(env, p.destination) : env.Null());
    o.Set("ttl", Napi::Number::New(env, p.ttl));
    auto payload = Napi::Uint8Array::New(env, p.payload.size());
    if (!p.payload.empty()) std::memcpy(payload.Data(), p.payload.data(), p.payload.size());
    o.Set("payload", payload);
    o.Set("truncated", Napi::Boolean::New(env, p.truncated));
    arr.Set(i, o);
  }
  if (batch->error.empty()) {
    cb.Call({arr});
  } else {
    cb.Call({arr, coded(env, "LVS_HOST", batch->error, batch->err).Value()});
  }
}

using VrrpTsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, VrrpBatch, DeliverVrrp>;

class VrrpChannel {
 public:
  static std::shared_ptr<VrrpChannel> start(Napi::Env env, std::unique_ptr<host::VrrpSocket> sock, Napi::Function cb) {
    auto c = std::shared_ptr<VrrpChannel>(new VrrpChannel());
    c->env_ = env;
    c->sock_ = std::move(sock);
    c->tsfn_ = VrrpTsfn::New(env, cb, "lvsd-vrrp", 0, 1);
    c->tsfn_.Unref(env);
    c->hook_ = new std::shared_ptr<VrrpChannel>(c);
    napi_add_env_cleanup_hook(env, &VrrpChannel::Teardown, c->hook_);
    VrrpChannel* self = c.get();
    c->thread_ = std::thread([self] { self->run(); });
    return c;
  }

  bool closed() const { return closed_; }
  host::VrrpSocket& socket() { return *sock_; }

  void close() {
    if (closed_) return;
    auto* hook = hook_;
    hook_ = nullptr;
    stop();
    if (hook) {
      napi_remove_env_cleanup_hook(env_, &VrrpChannel::Teardown, hook);
      delete hook;
    }
  }

 private:
  VrrpChannel() = default;

  static void Teardown(void* arg) {
    auto* hook = static_cast<std::shared_ptr<VrrpChannel>*>(arg);
    (*hook)->hook_ = nullptr;
    (*hook)->stop();
    delete hook;
  }

  void stop() {
    if (closed_) return;
    closed_ = true;
    sock_->stop();
    if (thread_.joinable()) thread_.join();
    tsfn_.Release();
    sock_.reset();
  }

  void run() {
    std::vector<host::VrrpPacket> batch;
    try {
      while (sock_->next(batch)) {
        auto* b = new VrrpBatch{std::move(batch), {}, 0};
        batch = {};
        if (tsfn_.NonBlockingCall(b) != napi_ok) {
          delete b;
          return;
        }
      }
    } catch (const HostError& e) {
      auto* b = new VrrpBatch{{}, std::string("vrrp receive stopped: ") + e.what(), e.err()};
      if (tsfn_.NonBlockingCall(b) != napi_ok) delete b;
    } catch (const std::exception& e) {
      auto* b = new VrrpBatch{{}, std::string("vrrp receive stopped: ") + e.what(), 0};
      if (tsfn_.NonBlockingCall(b) != napi_ok) delete b;
    }
  }

  napi_env env_ = nullptr;
  std::unique_ptr<host::VrrpSocket> sock_;
  VrrpTsfn tsfn_;
  std::thread thread_;
  std::shared_ptr<VrrpChannel>* hook_ = nullptr;
  bool closed_ = false;
};

Napi::Value VrrpOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string ns = netns_arg(info);
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "ifname: expected a string");
  const std::string ifname = info[1].As<Napi::String>();
  const uint32_t fam = u32_arg(info, 2, "family");
  if (fam != 4 && fam != 6) throw Napi::TypeError::New(env, "family: expected 4 or 6");
  if (!info[3].IsFunction()) throw Napi::TypeError::New(env, "onPackets: expected a function");
  auto sock = in_netns(env, ns, [&] { return std::make_unique<host::VrrpSocket>(ifname, fam == 4 ? AF_INET : AF_INET6); });
  const uint32_t ifindex = sock->ifindex();
  std::shared_ptr<VrrpChannel> c = VrrpChannel::start(env, std::move(sock), info[3].As<Napi::Function>());
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("ifindex", Napi::Number::New(env, ifindex));
  handle.Set("send", Napi::Function::New(env, [c, fam](const Napi::CallbackInfo& ci) {
    Napi::Env e = ci.Env();
    if (c->closed()) throw error(e, "LVS_CLOSED", "vrrp socket: send after close()");
    if (!ci[0].IsTypedArray() || ci[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(e, "payload: expected a Uint8Array");
    auto p = ci[0].As<Napi::Uint8Array>();
    IpAddr src;
    if (ci.Length() > 1 && !ci[1].IsNull() && !ci[1].IsUndefined()) {
      src = addr_arg(ci, 1);
      if (src.len != (fam == 4 ? 4 : 16)) throw Napi::TypeError::New(e, "source: not an address of the socket's family");
    }
    try {
      c->socket().send(p.Data(), p.ByteLength(), src);
    } catch (const HostError& err) {
      throw coded(e, err.code(), err.what(), err.err());
    }
    return e.Undefined();
  }, "send"));
  handle.Set("close", Napi::Function::New(env, [c](const Napi::CallbackInfo& ci) {
    c->close();
    return ci.Env().Undefined();
  }, "close"));
  return handle;
}

// enterNetns(netns): the calling (JS) thread joins the namespace for good. Sockets Node makes
// from then on (net, dgram, child processes) are there; other threads stay where they were.
Napi::Value EnterNetns(const Napi::CallbackInfo& info) {
  try {
    enter_netns(info[0].As<Napi::String>());
  } catch (const std::system_error& e) {
    throw error(info.Env(), "LVS_NETNS", e.what());
  }
  return info.Env().Undefined();
}

}  // namespace

void register_host(Napi::Env env, Napi::Object exports) {
  Napi::Object h = Napi::Object::New(env);
  h.Set("links", Napi::Function::New(env, Links, "links"));
  h.Set("addresses", Napi::Function::New(env, Addresses, "addresses"));
  h.Set("addAddress", Napi::Function::New(env, AddAddress, "addAddress"));
  h.Set("delAddress", Napi::Function::New(env, DelAddress, "delAddress"));
  h.Set("routeGet", Napi::Function::New(env, RouteGet, "routeGet"));
  h.Set("neighbours", Napi::Function::New(env, Neighbours, "neighbours"));
  h.Set("resolve", Napi::Function::New(env, Resolve, "resolve"));
  h.Set("watchNeighbours", Napi::Function::New(env, WatchNeighbours, "watchNeighbours"));
  h.Set("sendFrame", Napi::Function::New(env, SendFrame, "sendFrame"));
  h.Set("sysctl", Napi::Function::New(env, Sysctl, "sysctl"));
  h.Set("enterNetns", Napi::Function::New(env, EnterNetns, "enterNetns"));
  h.Set("vrrpOpen", Napi::Function::New(env, VrrpOpen, "vrrpOpen"));
  exports.Set("host", h);
}

}  // namespace lvsd::bind
