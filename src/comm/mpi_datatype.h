#pragma once
// at::ScalarType -> MPI datatypes. Data-moving collectives ship whole rows as one contiguous
// derived type, so counts stay in rows (no int overflow for wide rows) and bf16/fp16, which
// MPI has no type for, travel as MPI_UINT16_T. Reductions need a real arithmetic type.

#include <mpi.h>

#include <cstdint>

#include <ATen/ATen.h>

#include "comm/communicator.h"

namespace semskip {

// The element type used to move `t` (semskip::Error for complex and other unsupported dtypes).
MPI_Datatype mpi_element_type(at::ScalarType t, const char* what);
// The element type used to reduce `t`: fp32, fp64, int64; semskip::Error otherwise.
MPI_Datatype mpi_reduce_type(at::ScalarType t, const char* what);
MPI_Op mpi_op(ReduceOp op);

// A committed contiguous type of `row_numel` elements of `element`, freed on destruction.
class MpiRowType {
 public:
  MpiRowType(MPI_Datatype element, int64_t row_numel);
  ~MpiRowType();
  MpiRowType(const MpiRowType&) = delete;
  MpiRowType& operator=(const MpiRowType&) = delete;
  MPI_Datatype get() const { return type_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
  bool owned_ = false;
};

}  // namespace semskip
