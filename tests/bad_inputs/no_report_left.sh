#!/bin/sh
# no_report_left.sh REPORT COMMAND...: runs COMMAND, then prints NO-REPORT when REPORT does not
# exist (REPORT-LEFT when it does) and exits with COMMAND's status, so that a CLI test can
# assert both the refusal and that no report was written.
report=$1
shift
"$@"
rc=$?
if [ -e "$report" ]; then echo REPORT-LEFT; else echo NO-REPORT; fi
exit $rc
