// N-API glue for the dataplane: one object, the shared region, a coalesced wake-up, and the
// memory backend's frame I/O. Validation lives in TypeScript (src/dataplane); this file only
// moves arguments across (DESIGN.md rule 4).
#include <napi.h>
#include <memory>
#include "bindings.hpp"
#include "control/layout.hpp"
#include "control/protocol.hpp"
#include "engine/counters.hpp"
#include "engine/dataplane.hpp"
#include "flow/conn.hpp"
#include "flow/sync_record.hpp"
#include "flow/tcp_state.hpp"
#include "sched/maglev.hpp"

namespace {

using namespace lvsd;

uint32_t opt_u32(const Napi::Object& o, const char* key, uint32_t def) {
  const Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : def;
}
bool opt_bool(const Napi::Object& o, const char* key, bool def) {
  const Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
}

LayoutOptions layout_options(const Napi::Object& o) {
  LayoutOptions l;
  l.workers = opt_u32(o, "workers", l.workers);
  l.max_services = opt_u32(o, "maxServices", l.max_services);
  l.max_reals = opt_u32(o, "maxReals", l.max_reals);
  l.command_ring_words = opt_u32(o, "commandRingWords", l.command_ring_words);
  l.event_ring_words = opt_u32(o, "eventRingWords", l.event_ring_words);
  return l;
}

Napi::Object layout_object(Napi::Env env, const Layout& l) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("totalBytes", Napi::Number::New(env, double(l.total)));
  r.Set("clockWord", Napi::Number::New(env, Layout::kClockWord));
  r.Set("notifyWord", Napi::Number::New(env, Layout::kNotifyWord));
  r.Set("commandRing", Napi::Number::New(env, l.command_ring));
  r.Set("commandRingWords", Napi::Number::New(env, l.command_ring_words));
  r.Set("ringHeaderBytes", Napi::Number::New(env, kRingHeaderBytes));
  Napi::Array rings = Napi::Array::New(env, l.event_rings.size());
  for (uint32_t i = 0; i < l.event_rings.size(); ++i) rings.Set(i, Napi::Number::New(env, l.event_rings[i]));
  r.Set("eventRings", rings);
  r.Set("eventRingWords", Napi::Number::New(env, l.event_ring_words));
  r.Set("stats", Napi::Number::New(env, l.stats));
  r.Set("stripeBytes", Napi::Number::New(env, l.stripe_bytes));
  r.Set("stripeServices", Napi::Number::New(env, l.stripe_services));
  r.Set("stripeReals", Napi::Number::New(env, l.stripe_reals));
  return r;
}

Napi::Value Layout_(const Napi::CallbackInfo& info) {
  return layout_object(info.Env(), Layout::compute(layout_options(info[0].As<Napi::Object>())));
}

Napi::Value Constants(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object c = Napi::Object::New(env);
  auto set = [&](Napi::Object o, const char* k, uint32_t v) { o.Set(k, Napi::Number::New(env, v)); };
  Napi::Object ops = Napi::Object::New(env);
  set(ops, "SET_INTERFACE", proto::OP_SET_INTERFACE);
  set(ops, "DEL_INTERFACE", proto::OP_DEL_INTERFACE);
  set(ops, "SET_SERVICE", proto::OP_SET_SERVICE);
  set(ops, "DEL_SERVICE", proto::OP_DEL_SERVICE);
  set(ops, "SET_REAL", proto::OP_SET_REAL);
  set(ops, "DEL_REAL", proto::OP_DEL_REAL);
  set(ops, "SET_TIMEOUTS", proto::OP_SET_TIMEOUTS);
  set(ops, "CLEAR", proto::OP_CLEAR);
  set(ops, "COMMIT", proto::OP_COMMIT);
  set(ops, "DUMP_CONNS", proto::OP_DUMP_CONNS);
  set(ops, "SET_TABLE", proto::OP_SET_TABLE);
  set(ops, "SET_MARKS", proto::OP_SET_MARKS);
  set(ops, "SET_OPTIONS", proto::OP_SET_OPTIONS);
  set(ops, "SYNC_IMPORT", proto::OP_SYNC_IMPORT);
  c.Set("ops", ops);
  Napi::Object evs = Napi::Object::New(env);
  set(evs, "APPLIED", proto::EV_APPLIED);
  set(evs, "REAL_RELEASED", proto::EV_REAL_RELEASED);
  set(evs, "SERVICE_RELEASED", proto::EV_SERVICE_RELEASED);
  set(evs, "REJECTED", proto::EV_REJECTED);
  set(evs, "DUMP_READY", proto::EV_DUMP_READY);
  set(evs, "NEIGH_MISS", proto::EV_NEIGH_MISS);
  set(evs, "SYNC", proto::EV_SYNC);
  c.Set("events", evs);
  Napi::Array counters = Napi::Array::New(env, C_COUNT);
  for (uint32_t i = 0; i < C_COUNT; ++i) {
    const char* name = counter_name(i);
    if (!name && i >= C_DROP_PARSE_BASE) {
      const auto st = ParseStatus(i - C_DROP_PARSE_BASE);
      name = uint32_t(st) <= uint32_t(ParseStatus::IcmpBadInner) ? parse_status_name(st) : "";
    }
    counters.Set(i, Napi::String::New(env, name ? name : ""));
  }
  c.Set("counters", counters);
  set(c, "dropParseBase", C_DROP_PARSE_BASE);
  Napi::Array states = Napi::Array::New(env, proto::S_COUNT);
  for (uint32_t i = 0; i < proto::S_COUNT; ++i) states.Set(i, Napi::String::New(env, tcp::state_name(uint8_t(i))));
  c.Set("states", states);
  Napi::Array timeouts = Napi::Array::New(env, proto::S_COUNT);
  for (uint32_t i = 0; i < proto::S_COUNT; ++i) timeouts.Set(i, Napi::Number::New(env, tcp::kDefaultTimeoutS[i]));
  c.Set("defaultTimeouts", timeouts);
  set(c, "slotCounters", proto::SC_COUNT);
  set(c, "markRuleWords", proto::kMarkRuleWords);
  Napi::Object scheds = Napi::Object::New(env);
  const char* const sched_names[] = {"rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr", "dh", "sh", "mh", "fo", "ovf", "twos"};
  for (uint32_t i = 0; i < 14; ++i) set(scheds, sched_names[i], proto::SCH_RR + i);
  c.Set("schedulers", scheds);
  set(c, "dumpRecordBytes", kDumpRecordBytes);
  set(c, "syncRecordBytes", kSyncRecordBytes);
  set(c, "syncVersion", kSyncVersion);
  Napi::Object opts = Napi::Object::New(env);
  set(opts, "EXPIRE_NODEST_CONN", proto::OPT_EXPIRE_NODEST_CONN);
  set(opts, "EXPIRE_QUIESCENT_TEMPLATE", proto::OPT_EXPIRE_QUIESCENT_TEMPLATE);
  set(opts, "SYNC_MASTER", proto::OPT_SYNC_MASTER);
  c.Set("optionFlags", opts);
  Napi::Object fmts = Napi::Object::New(env);
  set(fmts, "ROWS", proto::DUMP_ROWS);
  set(fmts, "SYNC", proto::DUMP_SYNC);
  c.Set("dumpFormats", fmts);
  Napi::Object sflags = Napi::Object::New(env);
  set(sflags, "TEMPLATE", SF_TEMPLATE);
  set(sflags, "NOOUTPUT", SF_NOOUTPUT);
  set(sflags, "INACTIVE", SF_INACTIVE);
  set(sflags, "ASSURED", SF_ASSURED);
  set(sflags, "NO_CPORT", SF_NO_CPORT);
  set(sflags, "REPLIED", SF_REPLIED);
  c.Set("syncFlags", sflags);
  set(c, "connEntryBytes", sizeof(Conn));
  set(c, "maxFrame", MemoryPort::kMaxFrame);
  set(c, "maxInterfaces", kMaxInterfaces);
  return c;
}

class TsfnNotifier final : public Notifier {
 public:
  explicit TsfnNotifier(Napi::ThreadSafeFunction tsfn) : tsfn_(tsfn) {}
  void wake() override { tsfn_.NonBlockingCall(); }
  Napi::ThreadSafeFunction& tsfn() { return tsfn_; }

 private:
  Napi::ThreadSafeFunction tsfn_;
};

class DataplaneWrap : public Napi::ObjectWrap<DataplaneWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Dataplane",
                       {InstanceMethod("poll", &DataplaneWrap::Poll),
                        InstanceMethod("kick", &DataplaneWrap::Kick),
                        InstanceMethod("close", &DataplaneWrap::Close),
                        InstanceMethod("inject", &DataplaneWrap::Inject),
                        InstanceMethod("collect", &DataplaneWrap::Collect),
                        InstanceMethod("replay", &DataplaneWrap::Replay),
                        InstanceMethod("takeDump", &DataplaneWrap::TakeDump),
                        InstanceMethod("info", &DataplaneWrap::Info)});
  }

  // new Dataplane(options, region: Uint8Array over a SharedArrayBuffer, onEvents?: () => void)
  explicit DataplaneWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DataplaneWrap>(info) {
    Napi::Env env = info.Env();
    const Napi::Object o = info[0].As<Napi::Object>();
    auto region = info[1].As<Napi::Uint8Array>();
    region_ = Napi::Persistent(region.As<Napi::Object>());
    DataplaneOptions opts;
    opts.layout = layout_options(o);
    opts.conn_capacity = opt_u32(o, "connectionCapacity", opts.conn_capacity);
    opts.threaded = opt_bool(o, "threaded", opts.threaded);
    opts.manual_clock = opt_bool(o, "manualClock", opts.manual_clock);
    opts.memory_slots = opt_u32(o, "memorySlots", opts.memory_slots);
    opts.seed = opt_u32(o, "seed", 0);
    // io: {kind: 'xdp' | 'packet', netns?, frames?, zeroCopy?, steering?,
    //      interfaces: [{id, ifindex, name}]}
    const Napi::Value io = o.Get("io");
    if (io.IsObject()) {
      const Napi::Object i = io.As<Napi::Object>();
      const std::string kind = i.Get("kind").As<Napi::String>();
      opts.io.kind = kind == "xdp" ? IoKind::Xdp : kind == "packet" ? IoKind::Packet : IoKind::Memory;
      if (i.Get("netns").IsString()) opts.io.netns = i.Get("netns").As<Napi::String>();
      opts.io.frames = opt_u32(i, "frames", opts.io.frames);
      opts.io.workers = opts.layout.workers;
      const Napi::Value zc = i.Get("zeroCopy");
      if (zc.IsBoolean()) opts.io.zero_copy = zc.As<Napi::Boolean>().Value() ? 1 : 0;
      if (opts.io.kind == IoKind::Xdp) {
        opts.io.steering = bind::unwrap_steering(i.Get("steering"));
        steering_ = Napi::Persistent(i.Get("steering").As<Napi::Object>());
      }
      const Napi::Array ifs = i.Get("interfaces").As<Napi::Array>();
      for (uint32_t k = 0; k < ifs.Length(); ++k) {
        const Napi::Object f = ifs.Get(k).As<Napi::Object>();
        IoInterface ifc;
        ifc.id = uint16_t(opt_u32(f, "id", 0));
        ifc.ifindex = opt_u32(f, "ifindex", 0);
        ifc.name = f.Get("name").As<Napi::String>();
        opts.io.ifaces.push_back(ifc);
      }
    }
    if (opts.threaded && info.Length() > 2 && info[2].IsFunction()) {
      auto tsfn = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "lvsd-events", 0, 1);
      tsfn.Unref(env);
      notifier_ = std::make_unique<TsfnNotifier>(tsfn);
    }
    try {
      dp_ = std::make_unique<Dataplane>(opts, region.Data(), region.ByteLength(), notifier_.get());
    } catch (const std::exception& e) {
      release_tsfn();
      throw bind::error(env, opts.io.kind == IoKind::Memory ? "LVS_DATAPLANE_INIT" : "LVS_IO_INIT",
                        std::string("dataplane: ") + e.what());
    }
    napi_add_env_cleanup_hook(env, &DataplaneWrap::Cleanup, this);
    hooked_ = true;
    dp_->start();
  }

  ~DataplaneWrap() override { shutdown(); }

 private:
  static void Cleanup(void* self) {
    auto* w = static_cast<DataplaneWrap*>(self);
    w->hooked_ = false;
    w->shutdown();
  }

  void release_tsfn() {
    if (notifier_) {
      notifier_->tsfn().Release();
      notifier_.reset();
    }
  }

  void shutdown() {
    if (dp_) {
      dp_->stop();  // joins every thread: nothing calls the notifier after this
      dp_.reset();
    }
    release_tsfn();
  }

  Dataplane& dp(const Napi::CallbackInfo& info) {
    if (!dp_) {
      Napi::Error err = Napi::Error::New(info.Env(), "dataplane is closed");
      err.Set("code", Napi::String::New(info.Env(), "LVS_CLOSED"));
      throw err;
    }
    return *dp_;
  }

  MemoryPort& memory(const Napi::CallbackInfo& info, Dataplane& d, uint32_t w) {
    try {
      return d.memory(w);
    } catch (const std::exception& e) {
      throw bind::error(info.Env(), "LVS_MODE", e.what());
    }
  }

  Napi::Value Poll(const Napi::CallbackInfo& info) {
    dp(info).poll();
    return info.Env().Undefined();
  }

  Napi::Value Kick(const Napi::CallbackInfo& info) {
    dp(info).kick();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (hooked_) {
      napi_remove_env_cleanup_hook(info.Env(), &DataplaneWrap::Cleanup, this);
      hooked_ = false;
    }
    shutdown();
    return info.Env().Undefined();
  }

  // inject(worker, ifaces: Uint16Array, frames: Uint8Array[]) -> number of frames queued
  Napi::Value Inject(const Napi::CallbackInfo& info) {
    Dataplane& d = dp(info);
    const uint32_t w = info[0].As<Napi::Number>().Uint32Value();
    auto ifaces = info[1].As<Napi::Uint16Array>();
    auto frames = info[2].As<Napi::Array>();
    MemoryPort& port = memory(info, d, w);
    uint32_t n = 0;
    for (; n < frames.Length(); ++n) {
      auto f = frames.Get(n).As<Napi::Uint8Array>();
      if (!port.inject(ifaces[n], f.Data(), uint32_t(f.ByteLength()))) break;
    }
    if (n && d.threaded()) d.wake_worker(w);
    return Napi::Number::New(info.Env(), n);
  }

  // collect(worker, max) -> [{iface, verdict, data}]
  Napi::Value Collect(const Napi::CallbackInfo& info) {
    Dataplane& d = dp(info);
    Napi::Env env = info.Env();
    const uint32_t w = info[0].As<Napi::Number>().Uint32Value();
    const uint32_t max = info[1].As<Napi::Number>().Uint32Value();
    MemoryPort& port = memory(info, d, w);
    Napi::Array out = Napi::Array::New(env);
    MemoryPort::Output o;
    for (uint32_t i = 0; i < max && port.peek_output(o); ++i) {
      Napi::Object r = Napi::Object::New(env);
      r.Set("iface", Napi::Number::New(env, o.iface));
      r.Set("verdict", Napi::Number::New(env, uint32_t(o.verdict)));
      r.Set("data", Napi::Buffer<uint8_t>::Copy(env, o.data, o.len));
      out.Set(i, r);
      port.pop_output();
    }
    return out;
  }

  // replay(frames: Uint8Array[], ifaces: Uint16Array, total, worker) -> result
  Napi::Value Replay(const Napi::CallbackInfo& info) {
    Dataplane& d = dp(info);
    Napi::Env env = info.Env();
    auto frames = info[0].As<Napi::Array>();
    auto ifaces = info[1].As<Napi::Uint16Array>();
    const double total = info[2].As<Napi::Number>().DoubleValue();
    const uint32_t w = info[3].As<Napi::Number>().Uint32Value();
    std::vector<ReplayPort::Frame> v;
    v.reserve(frames.Length());
    for (uint32_t i = 0; i < frames.Length(); ++i) {
      auto f = frames.Get(i).As<Napi::Uint8Array>();
      v.push_back(ReplayPort::Frame{std::vector<uint8_t>(f.Data(), f.Data() + f.ByteLength()), ifaces[i]});
    }
    ReplayResult r;
    try {
      r = d.replay(std::move(v), uint64_t(total), w);
    } catch (const std::exception& e) {
      Napi::Error err = Napi::Error::New(env, e.what());
      err.Set("code", Napi::String::New(env, "LVS_MODE"));
      throw err;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("packets", Napi::Number::New(env, double(r.packets)));
    o.Set("tx", Napi::Number::New(env, double(r.tx)));
    o.Set("pass", Napi::Number::New(env, double(r.pass)));
    o.Set("drop", Napi::Number::New(env, double(r.drop)));
    o.Set("txBytes", Napi::Number::New(env, double(r.tx_bytes)));
    o.Set("ns", Napi::Number::New(env, double(r.ns)));
    return o;
  }

  Napi::Value TakeDump(const Napi::CallbackInfo& info) {
    Dataplane& d = dp(info);
    std::vector<uint8_t> buf;
    if (!d.take_dump(info[0].As<Napi::Number>().Uint32Value(), buf)) return info.Env().Null();
    return Napi::Buffer<uint8_t>::Copy(info.Env(), buf.data(), buf.size());
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Dataplane& d = dp(info);
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("tableBytes", Napi::Number::New(env, double(d.table_bytes())));
    o.Set("tableCapacity", Napi::Number::New(env, d.table_capacity()));
    o.Set("workers", Napi::Number::New(env, d.workers()));
    o.Set("threaded", Napi::Boolean::New(env, d.threaded()));
    Napi::Array ports = Napi::Array::New(env, d.workers());
    for (uint32_t w = 0; w < d.workers(); ++w) {
      const Port& p = d.port(w);
      const PortStats s = p.stats();
      Napi::Object po = Napi::Object::New(env);
      po.Set("kind", Napi::String::New(env, p.kind()));
      po.Set("rxPackets", Napi::Number::New(env, double(s.rx_packets)));
      po.Set("txPackets", Napi::Number::New(env, double(s.tx_packets)));
      po.Set("txFailed", Napi::Number::New(env, double(s.tx_failed)));
      po.Set("passDropped", Napi::Number::New(env, double(s.pass_dropped)));
      po.Set("kernelDropped", Napi::Number::New(env, double(s.kernel_dropped)));
      po.Set("fillEmpty", Napi::Number::New(env, double(s.fill_empty)));
      ports.Set(w, po);
    }
    o.Set("ports", ports);
    return o;
  }

  Napi::ObjectReference region_;
  Napi::ObjectReference steering_;  // kept alive while the ports use its XSKMAP
  std::unique_ptr<TsfnNotifier> notifier_;
  std::unique_ptr<Dataplane> dp_;
  bool hooked_ = false;
};

// maglevPopulate(offset: Uint32Array, skip: Uint32Array, turns: Int32Array, slots: Int32Array,
//                size) -> Int32Array (the control plane's Maglev table, see sched/maglev.hpp)
Napi::Value MaglevPopulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto offset = info[0].As<Napi::Uint32Array>();
  auto skip = info[1].As<Napi::Uint32Array>();
  auto turns = info[2].As<Napi::Int32Array>();
  auto slots = info[3].As<Napi::Int32Array>();
  const uint32_t size = info[4].As<Napi::Number>().Uint32Value();
  auto table = Napi::Int32Array::New(env, size);
  maglev_populate(offset.Data(), skip.Data(), turns.Data(), slots.Data(), uint32_t(offset.ElementLength()), size, table.Data());
  return table;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Dataplane", DataplaneWrap::Init(env));
  exports.Set("layout", Napi::Function::New(env, Layout_));
  exports.Set("constants", Napi::Function::New(env, Constants));
  exports.Set("maglevPopulate", Napi::Function::New(env, MaglevPopulate));
  bind::register_steering(env, exports);
  bind::register_host(env, exports);
  bind::register_bench(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(lvsd, Init)
