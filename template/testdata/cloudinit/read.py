# What cloud-init (its own Python package) reads from rendered bootstrap
# files, for cloudinit_test.go. Input on stdin, JSON:
#   kind      "nocloud" (a seed directory), "configdrive" (a config drive
#             tree) or "guestinfo" (guestinfo keys, in "keys")
#   dir       the directory holding the files (a temp dir)
#   keys      guestinfo key -> value (guestinfo only)
#   macs      the simulated guest's interfaces, MAC -> name
#   existing  accounts the simulated guest already has
#   groups    groups it already has
# Output on stdout, JSON: metadata, userdata, network (the config the
# datasource hands to the network renderer), users (cloud-init's normalized
# users), and what creating them would run: commands (argv and stdin),
# sudo rules and authorized keys per user.
#
# Nothing here acts on this machine: the datasources read only dir (and
# /proc, /sys), NoCloud's device probe is off (fs_label None), and the
# distro's commands, sudoers and authorized_keys writes are captured, not
# run.
import json
import os
import sys

from cloudinit import distros, helpers, subp, util, ssh_util
from cloudinit.distros import ug_util
from cloudinit.sources.helpers import openstack

req = json.load(sys.stdin)
tmp = req["dir"]
paths = helpers.Paths({"cloud_dir": os.path.join(tmp, "cloud"), "run_dir": os.path.join(tmp, "run")})
distro = distros.fetch("debian")("debian", {}, paths)
out = {}

if req["kind"] == "nocloud":
    from cloudinit.sources.DataSourceNoCloud import DataSourceNoCloud
    seed = os.path.join(paths.seed_dir, "nocloud")
    os.makedirs(os.path.dirname(seed), exist_ok=True)
    os.symlink(os.path.join(tmp, "seed"), seed)
    ds = DataSourceNoCloud({"datasource": {"NoCloud": {"fs_label": None}}}, distro, paths)
    if not ds._get_data():
        sys.exit("NoCloud found no seed in " + seed)
    out["metadata"] = ds.metadata
    out["userdata"] = util.decode_binary(ds.userdata_raw)
    out["network"] = ds.network_config
elif req["kind"] == "configdrive":
    res = openstack.ConfigDriveReader(os.path.join(tmp, "drive")).read_v2()
    out["metadata"] = res["metadata"]
    out["userdata"] = util.decode_binary(res["userdata"])
    nd = res.get("networkdata")
    out["network"] = openstack.convert_net_json(nd, known_macs=req["macs"]) if nd else None
elif req["kind"] == "guestinfo":
    from cloudinit.sources import DataSourceVMware as vmw
    # The datasource's environment transport: the same keys and decoding
    # as guestinfo read through vmware-rpctool.
    os.environ[vmw.VMX_GUESTINFO] = "1"
    for k, v in req["keys"].items():
        os.environ[("vmx." + k).upper().replace(".", "_")] = v
    ds = vmw.DataSourceVMware({}, distro, paths)
    if not ds._get_data():
        sys.exit("VMware datasource found no guestinfo")
    out["network"] = ds.metadata.get("network", {}).get("config")
    out["metadata"] = {k: v for k, v in ds.metadata.items() if k != "network"}
    out["userdata"] = util.decode_binary(ds.userdata_raw)
else:
    sys.exit("unknown kind " + req["kind"])

cfg = util.load_yaml(out["userdata"]) or {}
users, _groups = ug_util.normalize_users_groups(cfg, distro)
out["users"] = users

commands, sudo, keys = [], {}, {}
existing = set(req.get("existing", []))
created = set()


def fake_subp(args, data=None, **kw):
    commands.append({"argv": list(args), "stdin": util.decode_binary(data) if data else ""})
    if args[0] == "useradd":
        created.add(args[-1])
    return ("", "")


subp.subp = fake_subp
util.is_user = lambda name: name in existing or name in created
util.is_group = lambda name: name in set(req.get("groups", []))
distro.write_sudo_rules = lambda user, rules, sudo_file=None: sudo.setdefault(user, []).append(rules)
ssh_util.setup_user_keys = lambda k, user, options=None: keys.setdefault(user, []).extend(sorted(k))
for name, ucfg in users.items():
    ucfg = dict(ucfg)
    ucfg.pop("default", None)
    distro.create_user(name, **ucfg)
out["commands"] = commands
out["sudo"] = sudo
out["keys"] = keys
json.dump(out, sys.stdout, default=str)
