#!/usr/bin/env python3
"""reliability.py DIR...: one line per boot with what the stress, fuzz and
fault-injection suites did (seeds, operations, calls, data checks), read from
each boot's results.txt, for the log of make check and for README.md."""
import os
import re
import sys

def grab(pattern, text, default='-'):
    m = re.search(pattern, text, re.M)
    return m.group(1) if m else default

def suite(results, name):
    m = re.search(r'^@@HMM BEGIN %s\n(.*?)^@@HMM END %s' % (name, name), results, re.M | re.S)
    return m.group(1) if m else ''

print('%-22s %-18s %9s %9s %-14s %-18s %8s %s' % (
    'boot', 'stress seed', 'ops', 'pages', 'bad data', 'fuzz seed', 'calls', 'fault injection'))
for d in sys.argv[1:]:
    path = os.path.join(d, 'results.txt')
    if not os.path.exists(path):
        continue
    text = open(path, errors='replace').read()
    if '@@HMM BOOT' not in text:
        continue	# a host-side suite (compat, series)
    st, fz, fi = suite(text, 'hmm-stress'), suite(text, 'hmm-fuzz'), suite(text, 'hmm-fault-inject')
    m = re.search(r'^# corruptions (\d+), lost pages (\d+), lost writes (\d+)', st, re.M)
    bad = '%s/%s/%s' % m.groups() if m else '-'
    calls = grab(r'^# (\d+) calls in this process', fz)
    rounds = re.findall(r'^# ([\w -]+): (\d+) rounds, (\d+) ioctls failed', fi, re.M)
    print('%-22s %-18s %9s %9s %-14s %-18s %8s %s' % (
        os.path.basename(d.rstrip('/')).replace('check-', ''),
        grab(r'^# seed (\d+) \(replay: -s \d+ -t', st),
        grab(r'^# operations (\d+) in', st),
        grab(r'pages checked (\d+)', st),
        bad, grab(r'^# seed (\d+) \(replay: -s \d+ -n', fz), calls,
        ', '.join('%s: %s ioctls failed in %s rounds' % (n, f, r) for n, r, f in rounds)
        or '-'))
print('(bad data: corruptions/lost pages/lost writes; replay a seed with make repro)')
