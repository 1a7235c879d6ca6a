// libFuzzer target: the descriptor strings of policies (`residual:p=2,r=7,tau=0.95`), indexes
// (`faiss:IVF1024,Flat|nprobe=16`) and workloads (`text:doc.txt,chunk=256`). The first byte
// picks the parser. A descriptor that parses must round-trip (docs/conventions.md rule 9):
// the canonical text parses to the same canonical text; anything else must be refused with
// semskip::Error. A crash, a sanitiser report or another exception is a finding.

#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "index/descriptor.h"
#include "skip/descriptor.h"
#include "workloads/workload_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (data[0] % 3) {
      case 0: {
        const semskip::Descriptor d = semskip::Descriptor::parse(text);
        if (semskip::Descriptor::parse(d.text()).text() != d.text()) std::abort();
        break;
      }
      case 1: {
        const semskip::IndexDescriptor d = semskip::IndexDescriptor::parse(text);
        if (semskip::IndexDescriptor::parse(d.text()).text() != d.text()) std::abort();
        break;
      }
      default: {
        const semskip::WorkloadSpec s = semskip::WorkloadSpec::parse(text);
        if (semskip::WorkloadSpec::parse(s.describe()).describe() != s.describe()) std::abort();
        break;
      }
    }
  } catch (const semskip::Error&) {
  }
  return 0;
}
