#include "workloads/sharegpt_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace semskip {

int64_t write_sharegpt(Workload& w, const std::string& path) {
  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  SEMSKIP_THROW_IF_NOT_MSG(out.is_open(), "{}: cannot create file ({})", tmp, std::strerror(errno));
  out << "[";
  int64_t n = 0;
  while (std::optional<Request> r = w.next()) {
    SEMSKIP_THROW_IF_NOT_MSG(!r->prompt_text.empty(), "{}: request {} has no prompt text to write",
                             r->where(), r->id);
    SEMSKIP_THROW_IF_NOT_MSG(!r->reference_text.empty(),
                             "{}: request {} has no reference text for the gpt turn", r->where(),
                             r->id);
    nlohmann::json conv = {
        {"id", r->source_id.empty() ? std::to_string(r->id) : r->source_id},
        {"conversations",
         {{{"from", "human"}, {"value", r->prompt_text}}, {{"from", "gpt"}, {"value", r->reference_text}}}}};
    out << (n ? ",\n" : "\n");
    // Decoded random tokens may hold broken UTF-8; replace rather than fail.
    out << conv.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    ++n;
  }
  out << "\n]\n";
  out.close();
  SEMSKIP_THROW_IF_NOT_MSG(!out.fail(), "{}: write error", tmp);
  SEMSKIP_THROW_IF_NOT_MSG(std::rename(tmp.c_str(), path.c_str()) == 0, "{}: cannot rename to {} ({})",
                           tmp, path, std::strerror(errno));
  return n;
}

}  // namespace semskip
