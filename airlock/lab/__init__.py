"""The built-in lab: real hosts on this machine, as systemd containers made by podman.

Every host boots systemd as PID 1, runs sshd with this lab's own key, has a fixed
address on the lab's podman network and a non-overlay volume at /var/lib/containerd.
`up` converges to the requested shape (a second run changes nothing); `down` removes
every container, volume and network the lab made, and its keys and inventory.

Modules: spec (LabSpec: the lab's name, hosts, addresses and paths), hosts (Lab: up, down,
status, ssh), image (the host image, built once with debootstrap), inventory (the
Ansible inventory `up` writes), ssh (the ssh command line to a host), bundle (the lab
profile of the offline bundle).
"""
