#!/usr/bin/env python3
"""Mutation check of the plan's rules (issue 8): breaks each rule on purpose, one at a time,
and shows that the differential test (`miniflow-core/tests/plan_rules.rs`) fails.

Run by hand from the repository root (it edits files and restores them; commit first):

    python3 scripts/mutation_check.py            # every mutation
    python3 scripts/mutation_check.py 3 5        # some of them

Each mutation is a textual edit of the planner (`miniflow-ops/src/plan.rs`) or of the fused
kernel; the script applies it, runs the test on 2,000 networks, expects a failure, and
restores the file. A mutation the test does not catch is reported as SURVIVED and makes the
script exit non-zero.
"""
import os
import subprocess
import sys

PLAN = "miniflow-ops/src/plan.rs"
LINEAR = "miniflow-core/src/ops/linear.rs"

MUTATIONS = [
    ("fuse-sigmoid-linear: a sigmoid in any argument of the linear, not only `x`",
     PLAN, "[(c, 0)] if g.op(*c) == Some(Op::Linear)", "[(c, _)] if g.op(*c) == Some(Op::Linear)"),
    ("fuse-sigmoid-linear: a sigmoid with several consumers",
     PLAN, "matches!(g.uses[s].as_slice(), [(c, 0)] if g.op(*c) == Some(Op::Linear))",
     "g.uses[s].iter().any(|&(c, p)| p == 0 && g.op(c) == Some(Op::Linear))"),
    ("fuse-sigmoid-linear: the fused kernel ignores `accumulate` (issue 8's miscompile)",
     LINEAR, "    if !accumulate {\n        matmul::nt(alpha, g, w, T::zero(), buf.view_mut());",
     "    if true {\n        matmul::nt(alpha, g, w, T::zero(), buf.view_mut());"),
    ("sgd-in-place: ignore what later steps read",
     PLAN, "if last_read[p].is_some_and(|r| r >= first) {", "if false {"),
    ("sgd-in-place: look only at steps after the first contribution",
     PLAN, "last_read[p].is_some_and(|r| r >= first)", "last_read[p].is_some_and(|r| r > first)"),
    ("sgd-in-place: also update in-place params after the steps",
     PLAN, "        training.update_after.retain(|&u| u != p);\n", ""),
    ("write-first: every contribution overwrites",
     PLAN, "let sink = if first && write_first {", "let sink = if write_first {"),
    ("prune-gradients: prune `#[grad]` inputs' gradients too",
     PLAN, "let need = g.on_path_from(Node::wants_grad);", "let need = g.on_path_from(Node::is_param);"),
    ("train-params-only: prune the params' own gradients",
     PLAN, ".map(|i| backward_need[i] && from_params[i])",
     ".map(|i| backward_need[i] && from_params[i] && !g.dag.nodes[i].is_param())"),
]


def run_test():
    env = dict(os.environ, MINIFLOW_PLAN_NETS="2000")
    r = subprocess.run(
        ["cargo", "test", "-q", "-p", "miniflow-core", "--test", "plan_rules"],
        env=env, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def main():
    picked = [int(a) for a in sys.argv[1:]] or range(len(MUTATIONS))
    code, out = run_test()
    if code != 0:
        sys.exit("the unmutated test fails; fix that first:\n" + out[-3000:])
    survived = 0
    for k in picked:
        what, path, old, new = MUTATIONS[k]
        text = open(path).read()
        if text.count(old) != 1:
            print(f"{k}: {what}: pattern not found once in {path}; update this script")
            survived += 1
            continue
        open(path, "w").write(text.replace(old, new))
        try:
            code, out = run_test()
        finally:
            open(path, "w").write(text)
        first = next((l for l in out.splitlines() if "case " in l or "rule `" in l
                      or "panicked" in l), "").strip()
        if code == 0:
            survived += 1
            print(f"{k}: SURVIVED  {what}")
        else:
            print(f"{k}: caught    {what}\n             {first[:160]}")
    sys.exit(1 if survived else 0)


if __name__ == "__main__":
    main()
