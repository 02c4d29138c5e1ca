// The one explicit instantiation of the production offloader.
#include "aegis/os_offloader.hpp"

namespace aegis {
template class offloader<zmq_env, multi_producer>;
}  // namespace aegis
