"""airlock.cluster.kernel_settings's file contents and value comparison.

The module itself runs on real hosts in molecule/os-prep (m1's IP forwarding is turned off
first, so it must set a running value, not only write the boot file) and in every lab deploy.
"""

from __future__ import annotations

from ansible_collections.airlock.cluster.plugins.modules.kernel_settings import (
    Outcome,
    modules_text,
    normalized,
    proc_path,
    provider,
    sysctl_text,
)


def test_boot_files_list_each_module_and_setting_once_in_order() -> None:
    assert modules_text("hdr", ["overlay", "br_netfilter"]) == "# hdr\noverlay\nbr_netfilter\n"
    text = sysctl_text("hdr", {"net.ipv4.ip_forward": "1", "vm.max_map_count": "262144"})
    assert text == "# hdr\nnet.ipv4.ip_forward = 1\nvm.max_map_count = 262144\n"


def test_proc_path_splits_on_dots() -> None:
    assert proc_path("net.bridge.bridge-nf-call-iptables", "/p") == (
        "/p/net/bridge/bridge-nf-call-iptables"
    )


def test_values_compare_as_the_kernel_prints_them() -> None:
    # net.ipv4.ip_local_port_range reads back "32768\t60999".
    assert normalized("32768 60999") == normalized("32768\t60999\n")
    assert normalized("1") != normalized("0")


def test_a_missing_bridge_setting_names_br_netfilter() -> None:
    assert provider("net.bridge.bridge-nf-call-ip6tables") == "br_netfilter"
    assert provider("net.ipv4.ip_forward") == ""


def test_changed_only_when_something_changed() -> None:
    assert not Outcome().changed
    assert Outcome(set={"net.ipv4.ip_forward": "1"}).changed
    assert Outcome(files=["/etc/sysctl.d/x.conf"]).changed
