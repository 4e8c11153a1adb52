#!/usr/bin/env python3
"""Fold the results of one or more VM boots into a single KTAP document.

Usage: ktap-summary.py RESULT_DIR...

Each RESULT_DIR is what scripts/vm.sh left (a host-side step may leave the
same results.txt without console.txt: then only its suites are reported): results.txt (the guest's result
channel, suites framed by "@@HMM BEGIN name" / "@@HMM END name rc") and
console.txt (the kernel log). For every boot this reports:
  - each suite as a KTAP subtest holding every test case's result,
  - KUnit suites found in the kernel log,
  - "kernel-log": fails on any splat (BUG, WARNING, Oops, KASAN, lockdep,
    refcount_t, soft lockup, RCU stall, hung task, panic),
  - "vm": fails if the VM hung or died before the guest said it was done,
    naming the test that was running.
Leaf test cases are counted; the last line is "N passed, N failed, N skipped".
Exit status 1 if anything failed.
"""
import os
import re
import sys

RESULT = re.compile(r'^(\s*)(not ok|ok) (\d+)(?: -)? ?([^#]*?)\s*(?:#\s*(.*))?$')
PLAN = re.compile(r'^\s*1\.\.(\d+)')
SPLAT = re.compile(
    r'BUG:|WARNING:|Oops|KASAN|kernel BUG at|general protection fault|'
    r'possible recursive locking|possible circular locking|inconsistent lock state|'
    r'lockdep is turned off|suspicious RCU usage|refcount_t|soft lockup|hard LOCKUP|'
    r'rcu_.*stall|RCU stall|'
    r'detected stall|blocked for more than|Kernel panic|UBSAN:|list_add corruption|'
    r'list_del corruption|Bad page|BAD page|kmemleak: .* new suspected')


class Case:
    def __init__(self, ok, name, directive, diag):
        self.ok, self.name, self.directive, self.diag = ok, name, directive, diag

    @property
    def skipped(self):
        return self.directive.upper().startswith('SKIP')

    @property
    def failed(self):
        return not self.ok and not self.directive.upper().startswith(('SKIP', 'XFAIL', 'TODO'))


def leaf_cases(lines):
    """Leaf results of a (possibly nested) TAP/KTAP stream: a result line is a
    leaf unless it closes a deeper subtest that ended just before it."""
    cases, diag, plan = [], [], None
    prev_indent = None
    subtests = []   # (indent, name) of the enclosing "# Subtest:" lines
    for line in lines:
        m = RESULT.match(line)
        if not m:
            st = re.match(r'^(\s*)# Subtest: (.*)$', line)
            if st:
                depth = len(st.group(1))
                subtests = [t for t in subtests if t[0] < depth] + [(depth, st.group(2).strip())]
                continue
            p = PLAN.match(line)
            if p and plan is None and not line.startswith(' '):
                plan = int(p.group(1))
            elif line.strip().startswith('#'):
                diag.append(line.strip())
            continue
        indent = len(m.group(1))
        directive = m.group(5) or ''
        if prev_indent is not None and prev_indent > indent:
            prev_indent = indent
            subtests = [t for t in subtests if t[0] <= indent]
            diag = []
            continue
        prev_indent = indent
        name = '.'.join([t[1] for t in subtests if t[0] <= indent] + [m.group(4).strip()])
        cases.append(Case(m.group(2) == 'ok', name, directive, diag[-12:]))
        diag = []
    return cases, plan


def suites_of(results):
    """Split the result channel into (name, lines, exit code or None)."""
    suites, cur = [], None
    for line in results:
        if line.startswith('@@HMM BEGIN '):
            cur = [line[len('@@HMM BEGIN '):].strip(), [], None]
            suites.append(cur)
        elif line.startswith('@@HMM END ') and cur:
            cur[2] = int(line.split()[-1])
            cur = None
        elif cur is not None:
            cur[1].append(line)
    return suites


def kunit_blocks(console):
    """KUnit's KTAP from the kernel log: the lines from 'KTAP version 1' at
    column 0 on, keeping only KTAP-shaped lines (kernel messages interleave)."""
    out, inside = [], False
    for line in console:
        line = re.sub(r'^\[\s*\d+\.\d+\]\s?', '', line)
        if line.startswith('KTAP version'):
            inside = True
        if inside and (RESULT.match(line) or PLAN.match(line) or '# Subtest:' in line):
            out.append(line)
    return out


def read(path):
    try:
        with open(path, errors='replace') as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def main(dirs):
    top = []        # (name, cases, extra diagnostics)
    for d in dirs:
        tag = os.path.basename(os.path.normpath(d))
        results, console = read(os.path.join(d, 'results.txt')), read(os.path.join(d, 'console.txt'))
        for name, lines, rc in suites_of(results):
            cases, plan = leaf_cases(lines)
            notes = []
            if plan is not None and len(cases) < plan:
                missing = plan - len(cases)
                running = [l for l in lines if l.startswith('#  RUN ')]
                cases.append(Case(False, 'missing-results', '',
                                  ['# %d of %d tests never reported%s' % (
                                      missing, plan, '; last started: ' + running[-1][7:].strip(' .')
                                      if running else '')]))
            if rc is None:
                cases.append(Case(False, 'finished', '', ['# the suite never finished']))
            elif rc not in (0, 4) and not any(c.failed for c in cases):
                # kselftest exits 4 when everything skipped; anything else
                # unexplained by a failed case is a failure of its own.
                cases.append(Case(False, 'exit-status', '', ['# exit status %d' % rc]))
            if not cases and plan == 0 and rc == 0:
                cases.append(Case(True, 'nothing-to-check', 'SKIP empty suite', []))
            elif not cases:
                # A program that reports no TAP (the demo) passes by its exit status.
                cases.append(Case(rc == 0, 'ran', '',
                                  ['# produced no results, exit status %s' % rc]))
            top.append(('%s.%s' % (tag, name), cases, notes))
        if not os.path.exists(os.path.join(d, 'console.txt')):
            continue    # a host-side suite (no VM): its suites are all there is
        kunit = kunit_blocks(console)
        if kunit:
            cases, _ = leaf_cases(kunit)
            top.append(('%s.kunit' % tag, cases, []))
        splats = [l for l in console if SPLAT.search(l)]
        top.append(('%s.kernel-log' % tag,
                    [Case(not splats, 'no-splats', '', ['# ' + s for s in splats[:20]])], []))
        done = any(l.startswith('@@HMM DONE') for l in results)
        why = []
        if not done:
            running = [re.sub(r'^(#  RUN|@@HMM BEGIN)\s+|\s*\.\.\.$', '', l) for l in results
                       if l.startswith(('#  RUN ', '@@HMM BEGIN '))]
            why = ['# VM hung or died%s' % (
                ('; it was running: ' + running[-1]) if running else ' before any test started')]
            why += ['# ' + l for l in results if l.startswith('VM TIMEOUT')]
        top.append(('%s.vm' % tag, [Case(done, 'finished', '', why)], []))

    passed = failed = skipped = 0
    print('KTAP version 1')
    print('1..%d' % len(top))
    for i, (name, cases, notes) in enumerate(top, 1):
        print('    KTAP version 1')
        print('    # Subtest: %s' % name)
        print('    1..%d' % len(cases))
        sub_ok = True
        for j, c in enumerate(cases, 1):
            if c.failed:
                for line in c.diag:
                    print('    ' + line)
                sub_ok = False
                failed += 1
            elif c.skipped:
                skipped += 1
            else:
                passed += 1
            print('    %s %d %s%s' % ('ok' if c.ok else 'not ok', j, c.name,
                                     ' # ' + c.directive if c.directive else ''))
        print('%s %d %s' % ('ok' if sub_ok else 'not ok', i, name))
    print('%d passed, %d failed, %d skipped' % (passed, failed, skipped))
    return 1 if failed or not top else 0


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
