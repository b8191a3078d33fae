"""bench/graphmix_official.py: the data it hands the official code, its run-time changes, its resumable seeds loop.

The official code is not here (no licence), so the loop runs a stand-in written for this test that uses the same
constructs the changes are for: `.cuda()`, a legacy autograd.Function `SparseMM`, an in-place mix of ReLU's output.
"""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import torch
import torch.nn.functional as F


from conftest import ROOT

from mixsuite.plugins.graphmix.data import load_planetoid

spec = importlib.util.spec_from_file_location("graphmix_official", ROOT / "bench" / "graphmix_official.py")
official = importlib.util.module_from_spec(spec)
spec.loader.exec_module(official)


def read_gmnn(folder):
    rows = lambda name: [line.split("\t") for line in (folder / name).read_text().splitlines()]  # noqa: E731
    edges = {(int(u), int(v)) for u, v, w in rows("net.txt")}
    features = {int(u): {int(f.split(":")[0]) for f in fs.split(" ")} for u, fs in rows("feature.txt")}
    labels = {int(u): int(y) for u, y in rows("label.txt")}
    split = [[int(line) for line in (folder / f"{s}.txt").read_text().split()] for s in ("train", "dev", "test")]
    return edges, features, labels, split


def test_gmnn_export_is_the_graph_mixsuite_trains_on(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXSUITE_CACHE", str(tmp_path / "cache"))
    folder = official.export_gmnn("citeseer", shared_data, tmp_path / "citeseer")
    graph = load_planetoid(shared_data, "citeseer")
    edges, features, labels, (train, dev, test) = read_gmnn(folder)

    r, c = graph.adj.to_sparse_coo().coalesce().indices().tolist()
    links = {(u, v) for u, v in zip(r, c) if u != v}
    loops = edges - links
    assert edges - loops == links and len(links) == 2 * 4552
    isolated = set(range(graph.num_nodes)) - {u for u, _ in links}
    assert loops == {(u, u) for u in isolated} and len(isolated) == 48   # written as self-loops, as GMNN's files
    fr, fc = graph.x.coalesce().indices().tolist()
    support = {}
    for u, j in zip(fr, fc):
        support.setdefault(u, set()).add(j)
    assert features == support and graph.num_nodes - len(features) == 15  # featureless nodes have no line
    assert labels == dict(enumerate(graph.y.tolist()))
    assert (train, dev, test) == (graph.train_idx.tolist(), graph.val_idx.tolist(), graph.test_idx.tolist())


def test_input_dropout_drops_only_the_non_zeros():
    torch.manual_seed(0)
    x = (torch.rand(60, 40) < 0.1).float() * torch.rand(60, 40)
    proxy = official.InputDropoutOnNonZeros(F, num_features=40)
    out = proxy.dropout(x, 0.5, training=True)
    assert out.layout == torch.sparse_csr
    dense, nz = out.to_dense(), x != 0
    assert (dense[~nz] == 0).all()
    kept = dense[nz] != 0
    assert torch.allclose(dense[nz][kept], 2 * x[nz][kept])
    assert 0.35 < kept.float().mean() < 0.65
    assert torch.equal(proxy.dropout(x, 0.5, training=False).to_dense(), x)
    hidden = torch.rand(60, 40, requires_grad=True)          # not the input: the real F.dropout
    assert proxy.dropout(hidden, 0.0, training=True).layout == torch.strided
    assert proxy.relu is F.relu


def test_sparse_product_is_adj_times_dense_with_its_gradient():
    torch.manual_seed(0)
    adj = (torch.rand(7, 7) < 0.3).float() * torch.rand(7, 7)
    dense = torch.rand(7, 3, requires_grad=True)
    out = official.SparseProduct(adj.to_sparse())(dense)
    assert torch.allclose(out, adj @ dense)
    out.sum().backward()
    assert torch.allclose(dense.grad, adj.t() @ torch.ones(7, 3))


def test_run_script_options(tmp_path):
    (tmp_path / "run_cora.py").write_text("opt = dict()\nopt['dataset'] = '../data/cora'\nopt['lr'] = 0.01\n"
                                          "opt['decay'] = 5e-4\nopt['consistency_type'] = \"mse\"\n"
                                          "for k in range(100):\n    opt['seed'] = k + 1\n")
    assert official.run_script_options(tmp_path, "cora") == {
        "dataset": "../data/cora", "lr": 0.01, "decay": 5e-4, "consistency_type": "mse"}


STAND_IN = {
    "run_cora.py": """
        opt = dict()
        opt['dataset'] = '../data/cora'
        opt['pre_epoch'] = 3
        opt['input_dropout'] = 0.5
        for k in range(100):
            opt['seed'] = k + 1
            os.system('python3 train.py')
        """,
    "layer.py": """
        import torch
        class SparseMM(torch.autograd.Function):      # the legacy style current torch refuses to call
            def __init__(self, sparse):
                super().__init__()
                self.sparse = sparse
            def forward(self, dense):
                return torch.mm(self.sparse, dense)
        def propagate(adj, m):
            return SparseMM(adj)(m)
        """,
    "gnn.py": """
        import torch
        import torch.nn.functional as F
        from layer import propagate
        def mixup_gnn_hidden(x, idx, lam):
            x[idx] = lam * x[idx] + (1 - lam) * x[idx.flip(0)]
            return x
        class Net(torch.nn.Module):
            def __init__(self, adj, features, p):
                super().__init__()
                self.adj, self.p = adj, p
                self.w = torch.nn.Parameter(torch.randn(features, 4) * 0.1)
                self.cuda()
            def forward(self, x, idx):
                x = F.dropout(x, self.p, training=self.training)
                h = F.relu(propagate(self.adj, torch.mm(x, self.w)))
                return mixup_gnn_hidden(h, idx, 0.3)
        """,
    "train.py": """
        import argparse
        import torch
        from gnn import Net
        p = argparse.ArgumentParser()
        for k in ['dataset', 'save', 'seed', 'pre_epoch', 'input_dropout']:
            p.add_argument('--' + k)
        p.add_argument('--cpu', action='store_true')
        args = p.parse_args()
        torch.manual_seed(int(args.seed))
        rows = [line.split('\\t') for line in open(args.dataset + '/feature.txt')]
        cols = [int(f.split(':')[0]) for _, fs in rows for f in fs.split(' ')]
        x = torch.zeros(len(open(args.dataset + '/label.txt').readlines()), max(cols) + 1)
        for u, fs in rows:
            for f in fs.split(' '):
                x[int(u), int(f.split(':')[0])] = 1.0
        x = x.cuda()
        adj = torch.eye(x.shape[0]).to_sparse().cuda()
        net = Net(adj, x.shape[1], float(args.input_dropout))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        base_results = []
        for epoch in range(int(args.pre_epoch)):
            net.train()
            loss = net(x, torch.arange(10)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            base_results.append((0.5 + 0.1 * min(epoch, 1), 0.6 + 0.1 * epoch + int(args.seed) / 1000))
        best_dev, acc_test = 0.0, 0.0
        for d, t in base_results:
            if d >= best_dev:
                best_dev, acc_test = d, t
        """,
}


def test_seeds_loop_runs_the_code_on_cpu_and_resumes(shared_data, tmp_path):
    code = tmp_path / "codes"
    code.mkdir()
    for name, text in STAND_IN.items():
        (code / name).write_text(textwrap.dedent(text))
    out = tmp_path / "cora.jsonl"
    env = dict(os.environ, MIXSUITE_DATA=str(shared_data), MIXSUITE_CACHE=str(tmp_path / "cache"))
    cmd = [sys.executable, str(ROOT / "bench" / "graphmix_official.py"), "--code", str(code), "--out", str(out)]

    first = subprocess.run(cmd + ["--seeds", "1", "2", "--jobs", "2"], capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["seed"], r["epochs"], r["best_val_acc"]) for r in rows] == [(1, 3, 0.6), (2, 3, 0.6)]
    assert [round(r["best_test_acc"], 3) for r in rows] == [0.801, 0.802]   # ties go to the later epoch

    out.write_text(out.read_text() + '{"seed": 3, "best')               # a kill in the middle of a line
    again = subprocess.run(cmd + ["--seeds", "1", "2", "3"], capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "cora seed 3" in again.stdout and "seed 1:" not in again.stdout and "unfinished line" in again.stderr
    summary = json.loads(again.stdout.splitlines()[-1])
    assert summary["n"] == 3 and summary["seeds"] == "1-3" and summary["best_test_acc_mean"] == 80.2
