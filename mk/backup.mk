# pgBackRest backups of the PostgreSQL cluster: backup, point-in-time restore, the restore drill, metrics.
BACKUP_APT_PACKAGES := pgbackrest postgresql-15
# systemd-analyze (package systemd) checks the timers' calendar expressions.
TEST_APT_PACKAGES += $(BACKUP_APT_PACKAGES) systemd
BACKUP_STATE ?= .state/cluster
PCBACKUP := $(BIN)/pcbackup --state $(BACKUP_STATE)
TYPE ?= incr
TARGET ?=
DEST ?=
BACKUP_SET ?=
DRILL ?= cluster
REPO ?=
STAMPS ?= 10000000
TEXTFILE_DIR ?=

.PHONY: backup restore restore-discard restore-release restore-drill test-backup-cluster backup-info backup-verify backup-metrics

backup: dev ## back up the cluster with pgBackRest: TYPE=full|diff|incr (default incr), REPO=1|2 (default 1)
	scripts/apt-ensure $(BACKUP_APT_PACKAGES)
	$(PCBACKUP) backup --type $(TYPE) $(if $(REPO),--repo $(REPO))

restore: dev ## restore the latest backup, or TARGET="2026-11-27 10:00:00+00", into a new data dir on its own port
	scripts/apt-ensure $(BACKUP_APT_PACKAGES)
	$(PCBACKUP) restore $(if $(TARGET),--target "$(TARGET)") $(if $(BACKUP_SET),--set "$(BACKUP_SET)") $(if $(REPO),--repo $(REPO)) $(if $(DEST),--dest "$(DEST)")

restore-discard: dev ## stop a copy made by make restore and delete it: DEST=<directory printed by make restore>
	@test -n "$(DEST)" || { echo "make restore-discard: set DEST=<the directory make restore printed>" >&2; exit 2; }
	$(PCBACKUP) discard "$(DEST)"

restore-release: dev ## strip a restored copy's isolation settings and stop it so a new cluster can adopt it: DEST=<dir>
	@test -n "$(DEST)" || { echo "make restore-release: set DEST=<the directory make restore printed>" >&2; exit 2; }
	$(PCBACKUP) release "$(DEST)"

restore-drill: dev ## verify both repositories, restore the newest backups and the oldest full mid-window, row-exact (DRILL=standalone: a private server with STAMPS stamps, default 10M)
	scripts/apt-ensure $(BACKUP_APT_PACKAGES)
	mkdir -p .state && chmod 755 .state
	$(PCBACKUP) drill $(if $(filter standalone,$(DRILL)),--standalone --stamps $(STAMPS) --scratch $(CURDIR)/.state) --report .state/restore-drill.json
	$(BIN)/python -m punchclock_tools.docs.provenance restore-drill .state/restore-drill.json --command "make restore-drill$(if $(filter standalone,$(DRILL)), DRILL=standalone STAMPS=$(STAMPS))"

test-backup-cluster: dev ## the backup scenarios on a real cluster: the drill on the scheduled chain, after a failover, no archive hole across a failover, the lost-cluster runbook
	scripts/apt-ensure $(sort $(TEST_APT_PACKAGES))
	PUNCHCLOCK_BACKUP_CLUSTER=1 $(BIN)/pytest tests/backup/test_cluster.py $(PYTEST_ARGS)

backup-info: dev ## list the backups and WAL archive in the pgBackRest repository
	$(PCBACKUP) info

backup-verify: dev ## check every file in the pgBackRest repositories against its checksum (REPO=1|2: one)
	$(PCBACKUP) verify $(if $(REPO),--repo $(REPO))

backup-metrics: dev ## print backup and WAL archive freshness in Prometheus text format (TEXTFILE_DIR=<dir>: write there)
	$(PCBACKUP) metrics $(if $(TEXTFILE_DIR),--textfile-dir "$(TEXTFILE_DIR)")
