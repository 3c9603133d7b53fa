"""The loader reads an inventory as Ansible does: each host's variables in Ansible's
precedence (compared with Ansible's own VariableManager), INI through Ansible."""

from __future__ import annotations

from pathlib import Path

from airlock.inventory import load_inventory, validate

HOSTS = """\
all:
  vars: {v_all_inv: 1, v: all-inventory}
  hosts:
    a1: {ip: 10.0.0.1, v_host: 1}
    a2: {ip: 10.0.0.2}
    b[1:2]: {ip: 10.0.0.9}
  children:
    kube_node:
      vars: {v: node-inventory, v_node: 1}
      hosts: {a1: {}, a2: {v: a2-inventory-host}}
      children:
        lb:
          vars: {v: lb-inventory, ansible_group_priority: 5}
          hosts: {a2: {}}
    etcd:
      vars: {v: etcd-inventory}
      hosts: {a1: {}}
"""
FILES = {
    "group_vars/all.yml": "v: all-file\nv_all_file: 1\n",
    "group_vars/all/more.yml": "v_all_dir: 1\n",
    "group_vars/kube_node.yml": "v: node-file\n",
    "group_vars/etcd": "v_etcd_file: 1\n",
    "host_vars/a1.yml": "v: a1-file\n",
}


def _write(root: Path) -> Path:
    (root / "hosts.yml").write_text(HOSTS)
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _ansible_views(inventory: Path) -> dict[str, dict]:
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader
    from ansible.vars.manager import VariableManager

    from airlock.inventory.load import _init_plugins

    _init_plugins(init_plugin_loader)  # once per process, as airlock does
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(inventory)])
    variables = VariableManager(loader=loader, inventory=manager)
    views = {}
    for host in manager.get_hosts():
        everything = variables.get_vars(host=host, include_hostvars=False)
        views[host.name] = {
            k: everything[k] for k in everything if k.startswith(("v", "ip", "ansible_group"))
        }
    return views


def test_views_follow_ansible_precedence(tmp_path: Path) -> None:
    inventory = _write(tmp_path)
    inv = load_inventory(inventory)
    ours = {h: {k: v for k, v in view.items()} for h, view in inv.hosts.items()}
    assert set(ours) == {"a1", "a2", "b1", "b2"}
    assert ours == _ansible_views(inventory)
    assert inv.host_origins["a1"]["v"] == "host_vars/a1.yml:1"
    assert inv.host_origins["a2"]["v"] == "hosts.yml:10"
    assert inv.host_origins["b1"]["v"] == "hosts.yml:2"  # group_vars/all.yml is never read
    assert (
        "group_vars/all.yml:1: is never read: Ansible reads group_vars/all/ instead; "
        "move its variables into group_vars/all"
    ) in [str(p) for p in inv.problems]
    assert inv.groups["ungrouped"] == ["b1", "b2"]
    assert inv.groups["kube_node"] == ["a1", "a2"]


def test_ini_inventory_is_read_through_ansible(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("[etcd]\nm1 ip=10.0.0.1\n[kube_control_plane]\nm1\n[bundle_host]\nm1\n")
    inv = load_inventory(path)
    assert inv.hosts["m1"]["ip"] == "10.0.0.1"
    assert validate(inv) == []


def test_broken_ini_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("[etcd:children]\nfoo\n[etcd]\nm1 ip=10.0.0.1\n")
    problems = [str(p) for p in validate(load_inventory(path))]
    assert len(problems) == 1
    assert problems[0].startswith("hosts.ini:1: cannot be read:"), problems
    assert "undefined group 'foo'" in problems[0]
