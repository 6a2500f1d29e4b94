"""A small real training run: a 64-128-10 MLP on scikit-learn's digits
(1797 8x8 images; 1347 to train, 450 held out), 25 epochs of batches of 64,
trained by descent.torch with AdamW, Lion and the Muon + AdamW split. Each
must reach MIN_ACC held-out accuracy for every seed of SEEDS (independent
initializations and batch orders). Typical figures are in docs/python.md."""
import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("sklearn.datasets")
import descent.torch as dt  # noqa: E402

torch.set_num_threads(1)  # tiny matrices: threads only add contention

SEEDS = (0, 1, 2)
MIN_ACC = 0.95
EPOCHS = 25


def digits():
    x, y = datasets.load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32) / 16.0
    y = torch.tensor(y, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1234))
    x, y = x[perm], y[perm]
    return (x[:1347], y[:1347]), (x[1347:], y[1347:])


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 128)
        self.fc2 = torch.nn.Linear(128, 128)
        self.head = torch.nn.Linear(128, 10)  # "head": Muon's split leaves it to AdamW

    def forward(self, x):
        return self.head(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


OPTIMIZERS = {
    "adamw": lambda m: dt.Optimizer(m.named_parameters(), "adamw:lr=3e-3,weight_decay=0.01"),
    "lion": lambda m: dt.Optimizer(m.named_parameters(), "lion:lr=3e-4,weight_decay=0.1"),
    "muon": lambda m: dt.split(m, matrix="muon:lr=0.02", rest="adamw:lr=3e-3"),
}


def train(kind, seed):
    (xtr, ytr), (xte, yte) = digits()
    torch.manual_seed(seed)
    net = MLP()
    opt = OPTIMIZERS[kind](net)
    order = torch.Generator().manual_seed(seed)
    for _ in range(EPOCHS):
        perm = torch.randperm(len(xtr), generator=order)
        for i in range(0, len(xtr), 64):
            b = perm[i:i + 64]
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(xtr[b]), ytr[b]).backward()
            opt.step()
    with torch.no_grad():
        return (net(xte).argmax(1) == yte).float().mean().item()


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_digits_mlp_reaches_accuracy(kind):
    accs = [train(kind, s) for s in SEEDS]
    print("%s: held-out accuracy %s" % (kind, ", ".join("%.4f" % a for a in accs)))
    assert min(accs) >= MIN_ACC, accs
