#include "index/lookup_cost.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/error.h"
#include "index/descriptor.h"

namespace semskip {

namespace {

// Per-query cost in double (N/nlist is fractional), rounded once at the end.
int64_t times_queries(double per_query, int64_t n_queries) {
  SEMSKIP_THROW_IF_NOT_MSG(n_queries >= 0, "lookup_flops: n_queries must be ≥ 0, got {}",
                           n_queries);
  return std::llround(per_query * static_cast<double>(n_queries));
}

}  // namespace

int64_t flat_lookup_flops(int64_t dim, int64_t n_keys, int64_t n_queries) {
  return times_queries(2.0 * dim * n_keys, n_queries);
}

int64_t ivf_lookup_flops(int64_t dim, int64_t n_keys, int64_t nlist, int64_t nprobe,
                         int64_t n_queries) {
  SEMSKIP_ASSERT(nlist > 0 && nprobe > 0);
  const double probed = std::min(nprobe, nlist) * static_cast<double>(n_keys) / nlist;
  return times_queries(2.0 * dim * (nlist + probed), n_queries);
}

int64_t ivfpq_lookup_flops(int64_t dim, int64_t n_keys, int64_t nlist, int64_t nprobe,
                           int64_t pq_m, int64_t pq_nbits, int64_t n_queries) {
  SEMSKIP_ASSERT(nlist > 0 && nprobe > 0 && pq_m > 0 && pq_nbits > 0);
  const double ksub = std::ldexp(1.0, static_cast<int>(pq_nbits));
  const double probed = std::min(nprobe, nlist) * static_cast<double>(n_keys) / nlist;
  return times_queries(2.0 * dim * nlist + 2.0 * dim * ksub + pq_m * probed, n_queries);
}

int64_t pq_lookup_flops(int64_t dim, int64_t n_keys, int64_t pq_m, int64_t pq_nbits,
                        int64_t n_queries) {
  SEMSKIP_ASSERT(pq_m > 0 && pq_nbits > 0);
  const double ksub = std::ldexp(1.0, static_cast<int>(pq_nbits));
  return times_queries(2.0 * dim * ksub + static_cast<double>(pq_m) * n_keys, n_queries);
}

int64_t hnsw_lookup_flops(int64_t dim, int64_t n_keys, int64_t hnsw_m, int64_t ef_search,
                          int64_t n_queries) {
  SEMSKIP_ASSERT(hnsw_m > 1 && ef_search > 0);
  if (n_keys == 0) return 0;
  const double levels = std::max(
      1.0, std::ceil(std::log(static_cast<double>(n_keys)) / std::log(static_cast<double>(hnsw_m))));
  const double scored = std::min(static_cast<double>(n_keys),
                                 2.0 * hnsw_m * ef_search + hnsw_m * levels);
  return times_queries(2.0 * dim * scored, n_queries);
}

}  // namespace semskip

namespace semskip {

namespace {

double hnsw_levels(int64_t n_keys, int64_t hnsw_m) {
  return std::max(1.0, std::ceil(std::log(static_cast<double>(n_keys)) / std::log(static_cast<double>(hnsw_m))));
}

// The decimal number of `s` starting at `pos` (*end: one past its last digit); −1 if none.
int64_t digits_at(const std::string& s, size_t pos, size_t* end) {
  size_t e = pos;
  while (e < s.size() && std::isdigit(static_cast<unsigned char>(s[e]))) ++e;
  if (end) *end = e;
  return e == pos ? -1 : std::stoll(s.substr(pos, e - pos));
}

// "PQ<M>" or "PQ<M>x<nbits>" (FAISS's default 8 bits); false when `tok` is neither.
bool parse_pq(const std::string& tok, int64_t& m, int64_t& nbits) {
  if (tok.rfind("PQ", 0) != 0) return false;
  size_t end = 0;
  m = digits_at(tok, 2, &end);
  if (m <= 0) return false;
  nbits = 8;
  if (end < tok.size()) {
    if (tok[end] != 'x') return false;
    nbits = digits_at(tok, end + 1, &end);
    if (nbits <= 0 || end != tok.size()) return false;
  }
  return true;
}

}  // namespace

int64_t hnsw_insert_flops(int64_t dim, int64_t n_keys, int64_t hnsw_m, int64_t ef_construction) {
  SEMSKIP_ASSERT(hnsw_m > 1 && ef_construction > 0 && n_keys >= 0);
  if (n_keys == 0) return 0;
  const double n = static_cast<double>(n_keys), m = static_cast<double>(hnsw_m);
  const double efc = static_cast<double>(ef_construction);
  const double search = std::min(n, 2.0 * m * efc + m * hnsw_levels(n_keys, hnsw_m));
  const double kept = std::min(n, 2.0 * m);
  const double select = std::min(n, efc) * kept;
  const double backlinks = kept * (kept + 1.0);
  return std::llround(2.0 * dim * (search + select + backlinks));
}

int64_t kmeans_train_flops(int64_t dim, int64_t n_centroids, int64_t n_train) {
  SEMSKIP_ASSERT(n_centroids > 0 && n_train >= 0);
  const int64_t n = std::min(n_train, 256 * n_centroids);
  return 25 * 2 * dim * n_centroids * n;
}

IndexCostModel index_cost_model(const std::string& descriptor) {
  IndexDescriptor desc = IndexDescriptor::parse(descriptor);
  IndexCostModel m;
  if (auto ts = desc.take("train_size")) m.train_size = std::stoll(*ts);
  if (auto efc = desc.take("efConstruction")) m.ef_construction = std::stoll(*efc);
  if (desc.backend() != "faiss" && desc.backend() != "faiss-gpu") return m;  // exact flat backends
  const std::string& body = desc.body();
  auto refuse = [&]() {
    SEMSKIP_THROW_MSG("index descriptor '{}': no insertion / training cost formula for '{}' (index/lookup_cost.h)",
                      descriptor, body);
  };
  const size_t comma = body.find(',');
  const std::string first = body.substr(0, comma);
  const std::string second = comma == std::string::npos ? "" : body.substr(comma + 1);
  if (first.rfind("IVF", 0) == 0) {
    size_t end = 0;
    m.nlist = digits_at(first, 3, &end);
    if (m.nlist <= 0 || end != first.size() || second.empty()) refuse();
    if (parse_pq(second, m.pq_m, m.pq_nbits)) {
      m.kind = IndexCostModel::Kind::ivf_pq;
    } else if (second == "Flat" || second.rfind("SQ", 0) == 0) {
      m.kind = IndexCostModel::Kind::ivf;
    } else {
      refuse();
    }
  } else if (first.rfind("HNSW", 0) == 0) {
    m.kind = IndexCostModel::Kind::hnsw;
    m.hnsw_m = digits_at(first, 4, nullptr);
    if (m.hnsw_m <= 1) refuse();
  } else if (parse_pq(first, m.pq_m, m.pq_nbits) && second.empty()) {
    m.kind = IndexCostModel::Kind::pq;
  } else if (!((first == "Flat" || first.rfind("SQ", 0) == 0) && second.empty())) {
    refuse();
  }
  SEMSKIP_THROW_IF_NOT_MSG(m.ef_construction >= 1, "index descriptor '{}': efConstruction must be ≥ 1", descriptor);
  return m;
}

int64_t index_insert_flops(const IndexCostModel& m, int64_t dim, int64_t n_keys) {
  const int64_t ksub = m.pq_nbits > 0 ? (int64_t{1} << m.pq_nbits) : 0;
  switch (m.kind) {
    case IndexCostModel::Kind::flat: return 0;
    case IndexCostModel::Kind::ivf: return 2 * dim * m.nlist;
    case IndexCostModel::Kind::ivf_pq: return 2 * dim * m.nlist + 2 * dim * ksub;
    case IndexCostModel::Kind::pq: return 2 * dim * ksub;
    case IndexCostModel::Kind::hnsw: return hnsw_insert_flops(dim, n_keys, m.hnsw_m, m.ef_construction);
  }
  SEMSKIP_ASSERT(false);
  return 0;
}

int64_t index_train_flops(const IndexCostModel& m, int64_t dim, int64_t n_train) {
  const int64_t ksub = m.pq_nbits > 0 ? (int64_t{1} << m.pq_nbits) : 0;
  switch (m.kind) {
    case IndexCostModel::Kind::flat:
    case IndexCostModel::Kind::hnsw: return 0;
    case IndexCostModel::Kind::ivf: return kmeans_train_flops(dim, m.nlist, n_train);
    case IndexCostModel::Kind::ivf_pq: return kmeans_train_flops(dim, m.nlist, n_train) + kmeans_train_flops(dim, ksub, n_train);
    case IndexCostModel::Kind::pq: return kmeans_train_flops(dim, ksub, n_train);
  }
  SEMSKIP_ASSERT(false);
  return 0;
}

}  // namespace semskip
