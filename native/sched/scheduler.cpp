#include "sched/scheduler.hpp"
#include "sched/hashing.hpp"
#include "sched/least.hpp"
#include "sched/locality.hpp"
#include "sched/rr.hpp"
#include "sched/wrr.hpp"

namespace lvsd {

std::unique_ptr<Scheduler> make_scheduler(uint8_t kind) {
  switch (kind) {
    case proto::SCH_RR: return std::make_unique<RoundRobin>();
    case proto::SCH_WRR: return std::make_unique<WeightedRoundRobin>();
    case proto::SCH_LC: return std::make_unique<LeastConnection>();
    case proto::SCH_WLC: return std::make_unique<WeightedLeastConnection>(false);
    case proto::SCH_SED: return std::make_unique<WeightedLeastConnection>(true);
    case proto::SCH_NQ: return std::make_unique<NeverQueue>();
    case proto::SCH_LBLC: return std::make_unique<LocalityLeastConnection>();
    case proto::SCH_LBLCR: return std::make_unique<LocalityLeastConnectionReplicated>();
    case proto::SCH_DH: return std::make_unique<DestinationHash>();
    case proto::SCH_SH: return std::make_unique<SourceHash>();
    case proto::SCH_MH: return std::make_unique<Maglev>();
    case proto::SCH_FO: return std::make_unique<Failover>();
    case proto::SCH_OVF: return std::make_unique<Overflow>();
    case proto::SCH_TWOS: return std::make_unique<TwoChoices>();
    default: return nullptr;
  }
}

}  // namespace lvsd
