# HMM rewrite: entry points. Each target runs one script under scripts/; every
# script is re-runnable and rebuilds only what changed. Outputs go to build/.

.PHONY: run check check-debug bench profile repro shell kernel base-kernel patches deps tree clean help

help:
	@echo "make run          build and boot the patched kernel in QEMU, show HMM working"
	@echo "make check        build and run every test (KTAP, ends with 'N passed, N failed, N skipped')"
	@echo "make repro RUN='hmm-fuzz -s 42' [THP=always] [VARIANT=debug]  one command in the VM"
	@echo "make shell        boot the test VM to an interactive shell"
	@echo "make kernel       build the patched kernel (prints the bzImage path)"
	@echo "make base-kernel  build the pristine base with the same config"
	@echo "make check-debug  the VM suites on the debug kernel (KASAN, lockdep, DEBUG_VM, ...)"
	@echo "make bench        upstream vs ours, guest instructions per page under QEMU -icount"
	@echo "make profile [CASE=migrate-4k] [SIZE=64] [KERNEL=ours|base]  instructions per function"
	@echo "make patches      write the series as git format-patch files to build/patches/"
	@echo "make clean        remove build/ (ccache is kept)"

run:
	@scripts/run.sh

check:
	@scripts/check.sh

check-debug:
	@scripts/check-debug.sh

bench:
	@scripts/bench.sh

profile:
	@scripts/profile.sh

repro:
	@scripts/repro.sh $(or $(THP),madvise) $(or $(VARIANT),ours) $(RUN)

shell: kernel
	@scripts/build-user.sh
	@scripts/vm.sh shell

kernel: deps tree
	@scripts/build-kernel.sh ours

base-kernel: deps
	@scripts/tree.sh --with-base
	@scripts/build-kernel.sh base

patches: deps
	@scripts/patches.sh

deps:
	@scripts/deps.sh

tree:
	@scripts/tree.sh

clean:
	rm -rf build
