"""Run the rnnq command line with every file it opens, creates, renames or removes, and every
program it starts, logged (one JSON line each) to the file named by RNNQ_TRACE.

    RNNQ_TRACE=trace.jsonl python -m tests.hostile.traced compile model.onnx ...

Python's audit hooks see what the interpreter does itself; the compilers and emulators rnnq
starts are logged as the programs started, not followed inside.
"""

from __future__ import annotations

import json
import os
import sys

#: audit event -> (position of each path argument, whether it is written), position of dir_fd
_PATH_EVENTS = {"os.mkdir": (((0, True),), 2), "os.rename": (((0, True), (1, True)), 2),
                "os.remove": (((0, True),), 1), "os.rmdir": (((0, True),), 1),
                "os.symlink": (((1, True),), 2), "os.link": (((0, False), (1, True)), 2),
                "os.chmod": (((0, True),), 2), "os.truncate": (((0, True),), None),
                "shutil.rmtree": (((0, True),), 1), "shutil.copyfile": (((0, False), (1, True)),
                                                                          None),
                "shutil.move": (((0, True), (1, True)), None), "os.listdir": (((0, False),), None),
                "os.scandir": (((0, False),), None)}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _path(p, dir_fd=None) -> str | None:
    """The real path of p (relative to dir_fd when given)."""
    if isinstance(p, int) or p is None:
        return None
    p = os.fsdecode(p)
    if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(p):
        p = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), p)
    return os.path.realpath(p)


def _install(fd: int) -> None:
    def hook(event: str, args: tuple) -> None:
        if event == "subprocess.Popen":
            rec = {"event": event, "argv": [os.fsdecode(a) for a in (args[1] or [])]
                   if isinstance(args[1], list | tuple) else [os.fsdecode(args[1])]}
        elif event == "open":
            mode, flags = (args[1] if len(args) > 1 else None), (args[2] if len(args) > 2 else 0)
            write = bool((isinstance(mode, str) and any(c in mode for c in "wax+"))
                         or (isinstance(flags, int) and flags & _WRITE_FLAGS))
            if (p := _path(args[0])) is None:
                return
            rec = {"event": event, "paths": [[p, write]]}
        elif event in _PATH_EVENTS:
            where, fd_at = _PATH_EVENTS[event]
            dir_fd = args[fd_at] if fd_at is not None and fd_at < len(args) else None
            paths = [[_path(args[i], dir_fd), w] for i, w in where if i < len(args)]
            rec = {"event": event, "paths": [pw for pw in paths if pw[0]]}
            if not rec["paths"]:
                return
        else:
            return
        os.write(fd, (json.dumps(rec) + "\n").encode())

    sys.addaudithook(hook)


def main() -> None:
    fd = os.open(os.environ["RNNQ_TRACE"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _install(fd)
    from rnnq.cli import run

    sys.argv = ["rnnq", *sys.argv[1:]]
    run()


if __name__ == "__main__":
    main()
