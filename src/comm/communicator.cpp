#include "comm/communicator.h"

#include "core/error.h"

namespace semskip {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::max: return "max";
    case ReduceOp::min: return "min";
  }
  SEMSKIP_ASSERT(false);
  return "";
}

AlltoallvResult Communicator::alltoallv(const at::Tensor& rows, const std::vector<int64_t>& send_counts) {
  AlltoallvResult r;
  r.counts = alltoall_counts(send_counts);
  r.rows = alltoallv(rows, send_counts, r.counts);
  return r;
}

nlohmann::json Communicator::broadcast_json(const nlohmann::json& j, int root) {
  const std::string text = broadcast(rank() == root ? j.dump() : std::string(), root);
  return nlohmann::json::parse(text);
}

}  // namespace semskip
