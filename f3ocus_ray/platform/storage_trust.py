"""The trust boundary of `grid --resume`: Ray Tune restores an experiment by unpickling files
from its storage folder (`tuner.pkl`, the searcher's state, the trainable), and unpickling runs
whatever code the file names. So a resume reads only a folder that no one but the current user
(or root) could have written: every folder from `/` down to the experiment, and every file and
folder inside it, must be owned by the user or root and not writable by group or others. Two
exceptions: a group that is the user's own (a user private group, as a umask of 002 gives on
many systems: the user's primary group, named after the user, with no other member), and an
ancestor writable by others that has the sticky bit (as `/tmp`: others may add entries there,
not replace ours). A symlink inside the experiment folder is refused.

Remote storage (`s3://`, `gs://`) has no such check: whoever can write the bucket's prefix can
run code on the machine that resumes. Keep that prefix writable by the project's role only
(`cluster/aws-gpu.yaml`, `cluster/gcp-gpu.yaml` scope the nodes' roles to the bucket).
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from functools import cache
from pathlib import Path

from f3ocus_ray.errors import UserError

__all__ = ["check_private_storage"]

_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def _refuse(path: Path, why: str) -> UserError:
    return UserError(
        f"tune.storage_path: refusing to resume from {path}: {why}; Tune unpickles what it "
        "finds there, so only a folder no other user can write is trusted"
    )


@cache
def _private_group(gid: int, uid: int) -> bool:
    """Whether group gid is uid's user private group (no one else can write as it)."""
    try:
        user, group = pwd.getpwuid(uid), grp.getgrgid(gid)
    except KeyError:
        return False
    return (
        gid == user.pw_gid
        and group.gr_name == user.pw_name
        and set(group.gr_mem) <= {user.pw_name}
        and not any(p.pw_gid == gid and p.pw_uid != uid for p in pwd.getpwall())
    )


def _check(path: Path, st: os.stat_result, uid: int, *, ancestor: bool) -> None:
    if st.st_uid not in (uid, 0):
        raise _refuse(path, f"owned by another user (uid {st.st_uid})")
    mode = st.st_mode
    if mode & stat.S_IWGRP and not mode & stat.S_IWOTH and _private_group(st.st_gid, uid):
        mode &= ~stat.S_IWGRP
    if mode & _WRITABLE_BY_OTHERS and not (ancestor and mode & stat.S_ISVTX):
        raise _refuse(path, f"writable by group or others (mode {stat.filemode(st.st_mode)})")


def check_private_storage(experiment: str | Path) -> None:
    """Raise a UserError naming the first path that someone other than the current user (or
    root) could have written: an ancestor of the experiment folder, the folder itself, or
    anything inside it."""
    uid = os.getuid()
    real = Path(os.path.realpath(experiment))
    if not real.is_dir():
        return  # nothing to trust: the caller reports a missing experiment
    for d in reversed(real.parents):
        _check(d, d.stat(), uid, ancestor=True)
    _check(real, real.stat(), uid, ancestor=False)
    for dirpath, dirnames, filenames in os.walk(real):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                raise _refuse(p, "a symlink inside the experiment folder")
            _check(p, st, uid, ancestor=False)
