# Runs cloud-init's own entry points for cloudinit_test.go, paying
# cloud-init's import cost (most of a `cloud-init` command's run time) once
# per test binary instead of once per command.
#
# One job per line on stdin, JSON:
#   {"argv": ["cloud-init", "devel", "net-convert", ...]}
#       runs cloudinit.cmd.main.main(argv), what the cloud-init command
#       runs (the console script calls the same function);
#   {"script": "/path/read.py", "stdin": "..."}
#       runs a Python file as __main__ with that stdin.
# One answer per line on stdout, JSON: {"code": exit status, "stdout": ...,
# "stderr": ...}.
#
# Each job runs in a child forked after the imports, so jobs share no state
# (cloud-init keeps module-level caches and logging set-up) and one job's
# crash is its own exit status. Nothing here acts on the machine beyond what
# the job itself does.
import json
import os
import runpy
import sys
import tempfile
import traceback

import cloudinit.cmd.main  # noqa: F401  the heavy imports, once
import cloudinit.cmd.devel.net_convert  # noqa: F401
import cloudinit.config.schema  # noqa: F401
from cloudinit import distros, helpers, ssh_util, subp, util  # noqa: F401
from cloudinit.distros import ug_util  # noqa: F401
from cloudinit.sources.helpers import openstack  # noqa: F401
import cloudinit.sources.DataSourceNoCloud  # noqa: F401
import cloudinit.sources.DataSourceVMware  # noqa: F401

if "TZ" not in os.environ:  # as the cloud-init console script does
    os.environ["TZ"] = ":/etc/localtime"


def run(job, work):
    stdin = os.path.join(work, "stdin")
    with open(stdin, "w") as f:
        f.write(job.get("stdin", ""))
    out, err = os.path.join(work, "stdout"), os.path.join(work, "stderr")
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for fd, path, mode in ((0, stdin, os.O_RDONLY), (1, out, os.O_WRONLY | os.O_CREAT), (2, err, os.O_WRONLY | os.O_CREAT)):
                nfd = os.open(path, mode, 0o600)
                os.dup2(nfd, fd)
                os.close(nfd)
            sys.stdin = open(0, "r", closefd=False)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            try:
                if "argv" in job:
                    sys.argv = list(job["argv"])
                    rv = cloudinit.cmd.main.main(list(job["argv"]))
                    code = rv if isinstance(rv, int) else (1 if rv else 0)
                else:
                    sys.argv = [job["script"]]
                    runpy.run_path(job["script"], run_name="__main__")
                    code = 0
            except SystemExit as e:
                if e.code is None:
                    code = 0
                elif isinstance(e.code, int):
                    code = e.code
                else:
                    print(e.code, file=sys.stderr)
                    code = 1
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    answer = {"code": os.waitstatus_to_exitcode(status)}
    for key, path in (("stdout", out), ("stderr", err)):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                answer[key] = f.read()
        except FileNotFoundError:
            answer[key] = ""
    return answer


def main():
    for line in sys.stdin:
        job = json.loads(line)
        with tempfile.TemporaryDirectory(prefix="forkserver-") as work:
            answer = run(job, work)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


main()
