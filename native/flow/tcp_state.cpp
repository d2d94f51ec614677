#include "flow/tcp_state.hpp"

namespace lvsd::tcp {
namespace {

using namespace proto;
constexpr uint8_t NO = S_NONE, ES = S_ESTABLISHED, SS = S_SYN_SENT, SR = S_SYN_RECV,
                  FW = S_FIN_WAIT, TW = S_TIME_WAIT, CL = S_CLOSE, CW = S_CLOSE_WAIT,
                  LA = S_LAST_ACK, LI = S_LISTEN, SA = S_SYNACK;

// [direction][event: syn fin ack rst][current state NO ES SS SR FW TW CL CW LA LI SA]
constexpr uint8_t kTable[3][4][11] = {
    {   // INPUT
        {SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR},  // syn
        {CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW},  // fin
        {ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES},  // ack
        {CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR},  // rst
    },
    {   // OUTPUT
        {SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR},
        {TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW},
        {ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES},
        {CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL},
    },
    {   // INPUT_ONLY
        {SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR},
        {CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW},
        {ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES},
        {CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL},
    },
};

}  // namespace

uint8_t next_state(Dir dir, uint8_t flags, uint8_t state) {
  const int ev = event(flags);
  if (ev < 0) return S_CLOSE;
  if (state > S_SYNACK) return state;
  return kTable[dir][ev][state];
}

const char* state_name(uint8_t state) {
  static const char* const names[S_COUNT] = {
      "NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE",
      "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", "UDP", "ICMP"};
  return state < S_COUNT ? names[state] : "ERR!";
}

}  // namespace lvsd::tcp
