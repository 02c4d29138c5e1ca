// The production offloader: offloader<zmq_env>, instantiated once in os_offloader.cpp.
//
// Usage:
//   aegis::zmq_env env;
//   aegis::os_offloader off{env, cfg, on_fate};
//   off.start();
//
// The explicit instantiation lives in one translation unit that is built with
// FIU_ENABLE (when AEGIS_FIU is on), so the fault sites of the production
// offloader are libfiu failpoints that fiu-ctrl can switch on at run time.
#pragma once

#include "aegis/offloader.hpp"
#include "aegis/zmq_env.hpp"

namespace aegis {

/// Production offloader: real clock, threads and ZeroMQ sockets.
using os_offloader = offloader<zmq_env>;

extern template class offloader<zmq_env, multi_producer>;

}  // namespace aegis
