# serve-bench: arrivals, vLLM's metrics, the result JSON and the report tables (unit); the
# command's refusals (unit CLI tests); end to end on tiny-dense in one process (unit) and
# under 2 ranks (mpi). Included from tests/serve/CMakeLists.txt.
semskip_add_test(semskip_serve_bench_tests LABELS unit
  SOURCES bench_metrics_test.cpp arrivals_test.cpp bench_serve_report_test.cpp
  LIBS semskip_serve semskip_reports)

semskip_cli_test(serve_bench.cli.rate_negative RC nonzero REGEX "--request-rate: '-1' must be a positive number"
  COMMAND $<TARGET_FILE:semskip> serve-bench --request-rate=-1)
semskip_cli_test(serve_bench.cli.rate_text RC nonzero REGEX "--request-rate: 'fast' is not a number"
  COMMAND $<TARGET_FILE:semskip> serve-bench --request-rate fast)
semskip_cli_test(serve_bench.cli.goodput_key RC nonzero REGEX "--goodput 'foo:1': unknown metric 'foo' \\(allowed: ttft, tpot, e2el\\)"
  COMMAND $<TARGET_FILE:semskip> serve-bench --goodput foo:1)
semskip_cli_test(serve_bench.cli.goodput_form RC nonzero REGEX "--goodput 'ttft200': expected KEY:VALUE"
  COMMAND $<TARGET_FILE:semskip> serve-bench --goodput ttft200)
semskip_cli_test(serve_bench.cli.percentile_metrics RC nonzero
  REGEX "--percentile-metrics 'ttft,latency': unknown metric 'latency' \\(allowed: ttft, tpot, itl, e2el\\)"
  COMMAND $<TARGET_FILE:semskip> serve-bench --percentile-metrics ttft,latency)
semskip_cli_test(serve_bench.cli.metric_percentiles RC nonzero REGEX "--metric-percentiles '50,120': 120 is not in \\[0, 100\\]"
  COMMAND $<TARGET_FILE:semskip> serve-bench --metric-percentiles 50,120)
semskip_cli_test(serve_bench.cli.burstiness RC nonzero REGEX "--burstiness: 0 must be > 0"
  COMMAND $<TARGET_FILE:semskip> serve-bench --burstiness 0)
semskip_cli_test(serve_bench.cli.kv_both RC nonzero REGEX "--num-kv-blocks and --kv-cache-memory both size the KV pool"
  COMMAND $<TARGET_FILE:semskip> serve-bench --num-kv-blocks 64 --kv-cache-memory 1MiB)
semskip_cli_test(serve_bench.cli.detailed_alone RC nonzero REGEX "--save-detailed adds to the result JSON. give --save-result too"
  COMMAND $<TARGET_FILE:semskip> serve-bench --save-detailed)
# A result file in a folder that does not exist: refused before any work, nothing written.
semskip_cli_test(serve_bench.cli.result_folder RC nonzero REGEX "no-such-folder"
  COMMAND $<TARGET_FILE:semskip> serve-bench --result-filename ${CMAKE_CURRENT_BINARY_DIR}/no-such-folder/r.json)

semskip_require_python_modules(h5py numpy FOR "serve_bench.e2e")
add_test(NAME serve_bench.e2e
  COMMAND ${SEMSKIP_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/bench_e2e.py $<TARGET_FILE:semskip>
          ${CMAKE_CURRENT_BINARY_DIR}/bench_e2e_np1)
set_tests_properties(serve_bench.e2e PROPERTIES LABELS unit TIMEOUT 300 ENVIRONMENT "OMP_NUM_THREADS=1")
execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE serve_bench_mpiexec_version ERROR_QUIET)
set(serve_bench_mpiexec_flags)
if(serve_bench_mpiexec_version MATCHES "Open MPI|OpenRTE")
  set(serve_bench_mpiexec_flags --allow-run-as-root --oversubscribe)
endif()
add_test(NAME serve_bench.e2e.np2
  COMMAND ${SEMSKIP_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/bench_e2e.py $<TARGET_FILE:semskip>
          ${CMAKE_CURRENT_BINARY_DIR}/bench_e2e_np2 ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG}
          ${serve_bench_mpiexec_flags} ${MPIEXEC_PREFLAGS})
set_tests_properties(serve_bench.e2e.np2 PROPERTIES LABELS mpi TIMEOUT 600 PROCESSORS 2 ENVIRONMENT "OMP_NUM_THREADS=1")
semskip_cli_test(serve_bench.cli.skip_exec RC nonzero REGEX "option --skip-exec: unknown row execution 'fast'"
  COMMAND $<TARGET_FILE:semskip> serve-bench --skip-exec fast)
# Cache policies served by 2 ranks with replicated and sharded caches equal one process's
# cache over the union (outputs, hit rate, net FLOPs); local caches complete every request.
add_test(NAME serve_bench.cache_modes.np2
  COMMAND ${SEMSKIP_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/cache_modes_mpi.py $<TARGET_FILE:semskip>
          ${CMAKE_CURRENT_BINARY_DIR}/cache_modes_np2 ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG}
          ${serve_bench_mpiexec_flags} ${MPIEXEC_PREFLAGS})
set_tests_properties(serve_bench.cache_modes.np2 PROPERTIES LABELS mpi TIMEOUT 600 PROCESSORS 2
  ENVIRONMENT "OMP_NUM_THREADS=1")
# A policy that cannot serve (kv=exact needs the full model's run of the same tokens) is
# refused before the first policy is served: no result block, nothing written.
semskip_cli_test(serve_bench.cli.kv_exact RC nonzero
  REGEX "kv=exact takes skipped tokens' K/V from the full model"
  REJECT "Serving Benchmark Result"
  COMMAND $<TARGET_FILE:semskip> serve-bench --num-prompts 2 --max-new-tokens 2
          --policy residual:p=2,r=5,tau=0.95,kv=exact --result-filename ${CMAKE_CURRENT_BINARY_DIR}/kv_exact.json)
