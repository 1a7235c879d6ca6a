#pragma once
// The one timing protocol (docs/conventions.md rule 13) for code with a Torch device: core/timing.h
// (warm-up untimed, timed repetitions between two synchronisations, raw samples kept, the
// derived figures computed in one place) with the device synchronised around the clock.
// Every command that prints a rate measures through core/timing.h, here or directly.

#include <functional>
#include <string>

#include <c10/core/Device.h>

#include "core/timing.h"

namespace semskip {

// Waits until all work queued on `device` has finished (no-op on CPU).
void synchronize(const c10::Device& device);

struct TimingProtocol {
  int warmup = 1;   // untimed runs first (module load, kernel selection, allocator warm-up)
  int reps = 5;     // timed runs
  c10::Device device = c10::Device(c10::kCPU);  // synchronised around every timed run
};

// core/timing.h's time_repeated with `protocol.device` synchronised around every timed run.
TimingStats time_repeated(const std::function<void()>& fn, const TimingProtocol& protocol);

// "12.3 ms (median of 5, min 12.1 ms, max 13.0 ms)" — for terminal output.
std::string format_timing(const TimingStats& t);

}  // namespace semskip
