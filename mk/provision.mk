# Provisioning with Ansible (deploy/ansible) and its tests on podman hosts booting systemd (tests/provision,
# punchclock_tools.hosts). The quick test (two hosts) runs in make test; ssh is the controller's connection.
PROVISION_APT_PACKAGES := openssh-client openssl podman runc debootstrap netavark aardvark-dns iptables curl
TEST_APT_PACKAGES += $(PROVISION_APT_PACKAGES)
ANSIBLE_INVENTORY ?= deploy/ansible/inventory/example/hosts.yml

.PHONY: test-provision provision lint-ansible host-image

host-image: dev ## build the podman test-host image (debootstrap bookworm + systemd, sshd, python3) unless cached
	scripts/apt-ensure $(PROVISION_APT_PACKAGES)
	$(BIN)/python -m punchclock_tools.hosts image

# The five-host run records its scenarios' figures in results/provision.json (a narrowed run does not).
test-provision: dev ## five podman hosts: site.yml twice (changed=0), HTTPS on the floating address, four faults under load
	scripts/apt-ensure $(PROVISION_APT_PACKAGES)
	mkdir -p .state && rm -f .state/provision-report.jsonl
	PUNCHCLOCK_PROVISION_FULL=1 PUNCHCLOCK_HA_REPORT=$(CURDIR)/.state/provision-report.jsonl \
	  $(BIN)/pytest tests/provision -s $(PYTEST_ARGS)
	$(if $(PYTEST_ARGS),@echo "PYTEST_ARGS narrowed the run: results/provision.json not updated",$(BIN)/python -m punchclock_tools.docs.provenance provision .state/provision-report.jsonl --command "make test-provision")

provision: dev ## apply deploy/ansible/site.yml to ANSIBLE_INVENTORY (your own hosts; see docs/provisioning.md)
	cd deploy/ansible && ../../$(BIN)/ansible-playbook -i $(abspath $(ANSIBLE_INVENTORY)) site.yml

lint-ansible: dev ## yamllint and ansible-lint (offline) on deploy/ansible
	$(BIN)/yamllint -s -c deploy/ansible/.yamllint deploy/ansible
	cd deploy/ansible && PATH=$(CURDIR)/$(BIN):$$PATH ../../$(BIN)/ansible-lint --offline
