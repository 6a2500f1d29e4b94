/* shard.c - one optimizer over several processes (ZeRO-1), through the
 * communicator the caller gives (dsc_comm in descent.h). No MPI here: the
 * table of collectives is all this file knows about the other ranks.
 *
 * The design (docs/distributed.md):
 *   - dsc_optimizer_set_comm builds, on each rank, a second optimizer (the
 *     "local" one) whose parameters are the pieces of the caller's
 *     parameters this rank steps, and frees the state the caller's
 *     optimizer allocated. The families run unchanged on the pieces.
 *   - element-wise groups: the group's parameters, flattened one after the
 *     other, are cut into `size` contiguous ranges; the cuts fall on units
 *     of SHARD_UNIT elements counted from each parameter's start, so an
 *     8-bit state's quantization blocks (256) never straddle a cut and a
 *     piece's blocks are the whole tensor's blocks. A piece is a 1-D view
 *     of part of one parameter.
 *   - per-tensor groups (Muon family: the update of a matrix depends on the
 *     whole matrix): whole tensors go to ranks, largest cost first to the
 *     least loaded rank (cost: the Newton-Schulz flops, rows*cols*min).
 *   - other groups run whole on every rank (replicated).
 *   - after the families stepped their pieces, each parameter is gathered
 *     from its owners (allgatherv of its per-rank ranges, or a broadcast
 *     from the owner of a whole tensor).
 * The driver (step.c) keeps doing accumulation, the non-finite policy,
 * clipping and schedules on the caller's optimizer; only the gradient scan
 * is split: each rank scans the parameters it is assigned, the per
 * parameter results are all-reduced (every entry has one non-zero
 * contribution, so the sum is exact) and every rank adds them in parameter
 * order, exactly as one process does. Hence the same decision everywhere
 * and the same bits as one process.
 */
#include "internal.h"
#include "../kernels/rng.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHARD_UNIT 4096 /* elements; a multiple of DSC_QBLOCK (256) and of 16 floats */
#define MANIFEST_MAGIC "descent-sharded-checkpoint"

typedef enum { SH_ELEMENTWISE = 0, SH_TENSOR, SH_REPLICATED } sh_kind;

struct dsc_shard {
    dsc_comm comm;
    int rank, size;
    dsc_optimizer *local;    /* the pieces this rank steps */
    int *piece_outer;        /* per local parameter: index of its parameter */
    size_t *piece_off;       /* per local parameter: its first element */
    sh_kind *kind;           /* per parameter */
    int *owner;              /* per parameter: SH_TENSOR owner, scan owner */
    int *scan_owner;
    size_t *counts, *displs; /* per parameter, `size` each (SH_ELEMENTWISE) */
    double *scan;            /* per parameter: sumsq, sumabs, absmax, nonfinite */
    double *flags;           /* `size` doubles for agreement votes */
};

/* Families whose update of an element reads only that element (and the
 * hyperparameters and step count): any contiguous range can be stepped
 * alone. The 8-bit ones qualify when the cuts respect their blocks. */
static const char *const elementwise_families[] = {
    "sgd", "adam", "adamw", "lion", "signsgd", "signum", "adagrad",
    "adam8bit", "adamw8bit", "sgd8bit", "lion8bit", NULL};
/* Families whose update of a tensor reads only that tensor: no group state
 * shared between tensors, no random stream consumed across tensors. */
static const char *const tensor_families[] = {
    "muon", "normuon", "muon_moonlight", "adamp", "sgdp", NULL};

static int in_list(const char *const *list, const char *name)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0) return 1;
    return 0;
}

static sh_kind group_kind(const dsc_group *g)
{
    if (in_list(elementwise_families, g->family->info.name)) return SH_ELEMENTWISE;
    if (in_list(tensor_families, g->family->info.name)) return SH_TENSOR;
    return SH_REPLICATED;
}

/* Cost of stepping a whole tensor: ns5 does a few products of (rows x cols)
 * by (cols x min) and (min x min) matrices, about rows*cols*min(rows, cols)
 * multiply-adds each; element-wise work is numel. */
static double tensor_cost(const dsc_param *p)
{
    double r = (double)p->rows, c = (double)p->cols;
    if (p->ndim < 2) return (double)p->numel;
    return r * c * (r < c ? r : c) + (double)p->numel;
}

static void shard_free(struct dsc_shard *s)
{
    if (!s) return;
    dsc_optimizer_free(s->local);
    dsc_free(s->piece_outer);
    dsc_free(s->piece_off);
    dsc_free(s->kind);
    dsc_free(s->owner);
    dsc_free(s->scan_owner);
    dsc_free(s->counts);
    dsc_free(s->displs);
    dsc_free(s->scan);
    dsc_free(s->flags);
    dsc_free(s);
}

void dsc_shard_free(struct dsc_shard *s) { shard_free(s); }

static dsc_status comm_fail(dsc_optimizer *opt, const char *what, int rc)
{
    return dsc_fail(opt, DSC_IO, "communicator: %s failed (code %d); the ranks may now "
                    "disagree: stop the run", what, rc);
}

/* -------------------------------------------------------------- building */

/* Least-loaded assignment, largest first; ties go to the lower index, so
 * every rank computes the same table. */
static void assign_lpt(const int *which, int n, const double *cost, double *load, int size,
                       int *order, int *out)
{
    /* Insertion sort by cost descending (stable): n is the parameter count. */
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && cost[which[order[j - 1]]] < cost[which[i]]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (int k = 0; k < n; k++) {
        int best = 0;
        for (int r = 1; r < size; r++)
            if (load[r] < load[best]) best = r;
        load[best] += cost[which[order[k]]];
        out[which[order[k]]] = best;
    }
}

static dsc_status alloc_plan(const dsc_plan *plan, dsc_slot *slots, int *nslots)
{
    for (int i = 0; i < plan->nslots; i++) {
        slots[i] = plan->slot[i];
        slots[i].data = dsc_calloc(plan->slot[i].count ? plan->slot[i].count : 1,
                                   dsc_dtype_size(plan->slot[i].dtype));
        if (!slots[i].data) {
            for (int k = 0; k < i; k++) dsc_free(slots[k].data), slots[k].data = NULL;
            return DSC_NO_MEMORY;
        }
    }
    *nslots = plan->nslots;
    return DSC_OK;
}

/* A copy of group g (family, hyperparameters, schedules) in `local`. */
static dsc_status add_local_group(dsc_optimizer *local, const dsc_group *g, int npieces)
{
    dsc_group *c = dsc_calloc(1, sizeof *c);
    if (!c) return DSC_NO_MEMORY;
    strcpy(c->name, g->name);
    c->family = g->family;
    c->opt = local;
    memcpy(c->base, g->base, sizeof c->base);
    memcpy(c->init, g->init, sizeof c->init);
    memcpy(c->cur, g->cur, sizeof c->cur);
    memcpy(c->sched, g->sched, sizeof c->sched);
    c->sched_mask = g->sched_mask;
    c->wrap.bf16_state = g->wrap.bf16_state; /* the pieces' states are stored alike */
    c->params = dsc_calloc(npieces ? (size_t)npieces : 1, sizeof(int));
    local->groups[local->ngroups++] = c; /* owned by local from here */
    if (!c->params) return DSC_NO_MEMORY;
    c->cap_params = npieces;
    if (g->family->plan_group) {
        dsc_plan plan;
        memset(&plan, 0, sizeof plan);
        g->family->plan_group(c, &plan);
        if (alloc_plan(&plan, c->slots, &c->nslots) != DSC_OK) return DSC_NO_MEMORY;
    }
    return DSC_OK;
}

/* A piece [off, off + len) of parameter p in the local copy of its group. */
static dsc_status add_piece(dsc_optimizer *opt, dsc_optimizer *local, const dsc_param *p,
                            size_t off, size_t len)
{
    dsc_group *g = local->groups[p->group];
    dsc_param *q = dsc_calloc(1, sizeof *q);
    if (!q) return DSC_NO_MEMORY;
    if (off == 0 && len == p->numel) {
        snprintf(q->name, sizeof q->name, "%s", p->name);
        q->ndim = p->ndim;
        memcpy(q->shape, p->shape, sizeof q->shape);
        q->rows = p->rows;
        q->cols = p->cols;
    } else {
        /* "name@offset" names the piece in this rank's checkpoint. */
        char tail[32];
        snprintf(tail, sizeof tail, "@%zu", off);
        size_t keep = strlen(p->name);
        if (keep + strlen(tail) >= DSC_NAME_MAX) keep = DSC_NAME_MAX - 1 - strlen(tail);
        snprintf(q->name, sizeof q->name, "%.*s%s", (int)keep, p->name, tail);
        q->ndim = 1;
        q->shape[0] = (int64_t)len;
        q->rows = 1;
        q->cols = len;
    }
    q->numel = len;
    q->data = p->data + off;
    q->grad_user = q->grad = p->grad_user + off;
    q->role = p->role;
    q->no_decay = p->no_decay;
    q->group = p->group;
    memcpy(q->hp, p->hp, sizeof q->hp);
    memcpy(q->override_value, p->override_value, sizeof q->override_value);
    q->override_mask = p->override_mask;
    /* The 8-bit families choose 8-bit or float32 states by the tensor's
     * size: a piece must take the whole tensor's choice. */
    int min8 = dsc_family_key(g->family, "min_8bit_size");
    double saved = min8 >= 0 ? g->base[min8] : 0.0;
    if (min8 >= 0) g->base[min8] = (double)p->numel >= saved ? 0.0 : 9007199254740992.0;
    dsc_plan plan;
    memset(&plan, 0, sizeof plan);
    char err[DSC_ERR_MAX] = "";
    dsc_status st = g->family->plan_param(g, q, &plan, err, sizeof err);
    if (min8 >= 0) g->base[min8] = saved;
    if (st != DSC_OK) {
        dsc_free(q);
        return dsc_fail(opt, st, "set_comm: piece of \"%s\": %s", p->name, err);
    }
    if (alloc_plan(&plan, q->slots, &q->nslots) != DSC_OK ||
        (plan.scratch_bytes && !(q->scratch = dsc_calloc(1, plan.scratch_bytes)))) {
        for (int k = 0; k < q->nslots; k++) dsc_free(q->slots[k].data);
        dsc_free(q);
        return DSC_NO_MEMORY;
    }
    q->scratch_bytes = plan.scratch_bytes;
    local->params[local->nparams] = q;
    g->params[g->nparams++] = local->nparams;
    local->nparams++;
    if (g->family->init_param) g->family->init_param(g, q);
    return DSC_OK;
}

/* Element-wise cut of one group: per parameter, counts/displs of each rank. */
static void cut_group(const dsc_optimizer *opt, const dsc_group *g, int size, size_t *counts,
                      size_t *displs)
{
    size_t total = 0;
    for (int k = 0; k < g->nparams; k++) total += opt->params[g->params[k]]->numel;
    size_t start = 0; /* flattened offset of the parameter in the group */
    for (int k = 0; k < g->nparams; k++) {
        int pi = g->params[k];
        const dsc_param *p = opt->params[pi];
        size_t *c = counts + (size_t)pi * size, *d = displs + (size_t)pi * size;
        for (int r = 0; r < size; r++) c[r] = 0, d[r] = 0;
        int last = -1;
        for (size_t u = 0; u < p->numel; u += SHARD_UNIT) {
            size_t len = p->numel - u < SHARD_UNIT ? p->numel - u : SHARD_UNIT;
            /* the rank whose share [r T / size, (r+1) T / size) holds the
             * unit's first element: monotone in u, so ranges are contiguous */
            int r = (int)((double)(start + u) * size / (double)total);
            while (r + 1 < size && (start + u) * (size_t)size >= (size_t)(r + 1) * total) r++;
            while (r > 0 && (start + u) * (size_t)size < (size_t)r * total) r--;
            if (r != last) d[r] = u;
            c[r] += len;
            last = r;
        }
        /* empty ranges sit at the end of the previous one (any displs works
         * for zero counts; this keeps them in bounds) */
        size_t at = 0;
        for (int r = 0; r < size; r++) {
            if (c[r] == 0) d[r] = at;
            at = d[r] + c[r];
        }
        start += p->numel;
    }
}

static dsc_status build(dsc_optimizer *opt, struct dsc_shard *s)
{
    int n = opt->nparams, N = s->size;
    /* The ema / lookahead wrappers (wrap.c) keep averaged weights that
     * dsc_optimizer_average hands out whole: not sharded yet. */
    for (int gi = 0; gi < opt->ngroups; gi++)
        if (opt->groups[gi]->wrap.ema || opt->groups[gi]->wrap.lookahead)
            return dsc_fail(opt, DSC_UNSUPPORTED, "set_comm: group \"%s\" has an ema or "
                            "lookahead wrapper, which a sharded optimizer does not support yet",
                            opt->groups[gi]->name);
    /* bf16 parameters (bf16.c) round the gathered float32 values back: not
     * tested sharded yet. */
    for (int i = 0; i < n; i++)
        if (opt->params[i]->bf16)
            return dsc_fail(opt, DSC_UNSUPPORTED, "set_comm: parameter \"%s\" is bf16, which a "
                            "sharded optimizer does not support yet", opt->params[i]->name);
    s->kind = dsc_calloc((size_t)n, sizeof *s->kind);
    s->owner = dsc_calloc((size_t)n, sizeof *s->owner);
    s->scan_owner = dsc_calloc((size_t)n, sizeof *s->scan_owner);
    s->counts = dsc_calloc((size_t)n * N, sizeof(size_t));
    s->displs = dsc_calloc((size_t)n * N, sizeof(size_t));
    s->scan = dsc_calloc((size_t)n * 4, sizeof(double));
    s->flags = dsc_calloc((size_t)N, sizeof(double));
    double *cost = dsc_calloc((size_t)n, sizeof(double));
    double *load = dsc_calloc((size_t)N, sizeof(double));
    int *which = dsc_calloc((size_t)n, sizeof(int));
    int *order = dsc_calloc((size_t)n, sizeof(int));
    s->local = dsc_optimizer_new();
    if (s->local) s->local->shard_local = 1; /* its checkpoints skip the transform settings */
    dsc_status st = DSC_NO_MEMORY;
    if (!s->kind || !s->owner || !s->scan_owner || !s->counts || !s->displs || !s->scan ||
        !s->flags || !cost || !load || !which || !order || !s->local)
        goto done;

    /* Who owns what. */
    int nt = 0;
    for (int i = 0; i < n; i++) {
        const dsc_param *p = opt->params[i];
        s->kind[i] = group_kind(opt->groups[p->group]);
        if (s->kind[i] == SH_TENSOR) which[nt++] = i, cost[i] = tensor_cost(p);
    }
    assign_lpt(which, nt, cost, load, N, order, s->owner);
    for (int gi = 0; gi < opt->ngroups; gi++)
        if (group_kind(opt->groups[gi]) == SH_ELEMENTWISE)
            cut_group(opt, opt->groups[gi], N, s->counts, s->displs);
    /* Scanning the gradient: whole tensors balanced by size. */
    for (int r = 0; r < N; r++) load[r] = 0;
    for (int i = 0; i < n; i++) which[i] = i, cost[i] = (double)opt->params[i]->numel;
    assign_lpt(which, n, cost, load, N, order, s->scan_owner);

    /* The local optimizer: same groups, this rank's pieces. */
    int npieces = 0;
    int *per_group = dsc_calloc((size_t)opt->ngroups, sizeof(int));
    if (!per_group) goto done;
    for (int i = 0; i < n; i++) {
        int mine = s->kind[i] == SH_REPLICATED ||
                   (s->kind[i] == SH_TENSOR && s->owner[i] == s->rank) ||
                   (s->kind[i] == SH_ELEMENTWISE && s->counts[(size_t)i * N + s->rank] > 0);
        if (mine) npieces++, per_group[opt->params[i]->group]++;
    }
    dsc_optimizer *local = s->local;
    local->groups = dsc_calloc((size_t)opt->ngroups, sizeof(dsc_group *));
    local->params = dsc_calloc(npieces ? (size_t)npieces : 1, sizeof(dsc_param *));
    s->piece_outer = dsc_calloc(npieces ? (size_t)npieces : 1, sizeof(int));
    s->piece_off = dsc_calloc(npieces ? (size_t)npieces : 1, sizeof(size_t));
    if (!local->groups || !local->params || !s->piece_outer || !s->piece_off) {
        dsc_free(per_group);
        goto done;
    }
    local->cap_groups = opt->ngroups;
    local->cap_params = npieces;
    for (int gi = 0; gi < opt->ngroups; gi++) {
        st = add_local_group(local, opt->groups[gi], per_group[gi]);
        if (st != DSC_OK) break;
    }
    dsc_free(per_group);
    if (st != DSC_OK) goto done;
    for (int i = 0; i < n && st == DSC_OK; i++) {
        const dsc_param *p = opt->params[i];
        size_t off = 0, len = 0;
        if (s->kind[i] == SH_REPLICATED || (s->kind[i] == SH_TENSOR && s->owner[i] == s->rank))
            len = p->numel;
        else if (s->kind[i] == SH_ELEMENTWISE) {
            off = s->displs[(size_t)i * N + s->rank];
            len = s->counts[(size_t)i * N + s->rank];
        }
        if (!len) continue;
        s->piece_outer[local->nparams] = i;
        s->piece_off[local->nparams] = off;
        st = add_piece(opt, local, p, off, len);
    }
    if (st != DSC_OK) goto done;
    /* Group workspaces (sized by the pieces that joined). */
    for (int gi = 0; gi < local->ngroups; gi++) {
        dsc_group *g = local->groups[gi];
        if (!g->family->plan_group) continue;
        dsc_plan plan;
        memset(&plan, 0, sizeof plan);
        g->family->plan_group(g, &plan);
        if (plan.scratch_bytes && !(g->scratch = dsc_calloc(1, plan.scratch_bytes))) {
            st = DSC_NO_MEMORY;
            goto done;
        }
        g->scratch_bytes = plan.scratch_bytes;
    }
    local->reference = opt->reference;
    st = DSC_OK;
done:
    dsc_free(cost);
    dsc_free(load);
    dsc_free(which);
    dsc_free(order);
    if (st == DSC_NO_MEMORY) dsc_fail(opt, st, "set_comm: out of memory");
    return st;
}

/* Every rank votes `bad` (0/1); returns the number of ranks that voted 1 and
 * leaves the votes in s->flags (or -1 if the collective failed). */
static int vote(struct dsc_shard *s, int bad)
{
    for (int r = 0; r < s->size; r++) s->flags[r] = 0.0;
    s->flags[s->rank] = bad ? 1.0 : 0.0;
    if (s->comm.allreduce_sum(s->comm.ctx, s->flags, (size_t)s->size, DSC_COMM_F64) != 0)
        return -1;
    int n = 0;
    for (int r = 0; r < s->size; r++) n += s->flags[r] != 0.0;
    return n;
}

static int first_voter(const struct dsc_shard *s)
{
    for (int r = 0; r < s->size; r++)
        if (s->flags[r] != 0.0) return r;
    return -1;
}

/* A fingerprint of the set-up (groups, kinds, names, shapes): ranks must agree. */
static double fingerprint(const dsc_optimizer *opt)
{
    uint64_t h = DSC_FNV64_OFFSET;
    for (int gi = 0; gi < opt->ngroups; gi++) {
        h = dsc_fnv1a64_str(h, opt->groups[gi]->name);
        h = dsc_fnv1a64_str(h, opt->groups[gi]->family->info.name);
        h = dsc_fnv1a64(h, 0);
    }
    for (int i = 0; i < opt->nparams; i++) {
        const dsc_param *p = opt->params[i];
        h = dsc_fnv1a64_str(h, p->name);
        h = dsc_fnv1a64(h, (uint64_t)p->group);
        for (int d = 0; d < p->ndim; d++) h = dsc_fnv1a64(h, (uint64_t)p->shape[d]);
    }
    return (double)(h >> 11); /* 53 bits: exact in a double */
}

dsc_status dsc_optimizer_set_comm(dsc_optimizer *opt, const dsc_comm *comm)
{
    if (!opt) return DSC_NULL_POINTER;
    dsc_clear_error(opt);
    if (!comm) return dsc_fail(opt, DSC_NULL_POINTER, "set_comm: comm is NULL");
    if (!comm->rank || !comm->size || !comm->allreduce_sum || !comm->allgatherv ||
        !comm->broadcast)
        return dsc_fail(opt, DSC_NULL_POINTER, "set_comm: a function of the communicator is NULL");
    if (opt->shard)
        return dsc_fail(opt, DSC_STATE, "set_comm: a communicator is already set");
    if (opt->nparams == 0)
        return dsc_fail(opt, DSC_STATE, "set_comm: add the parameters first");
    if (opt->step != 0 || opt->micro != 0)
        return dsc_fail(opt, DSC_STATE, "set_comm: call before the first step (the state of "
                        "%lld steps would have to be split)", (long long)opt->step);
    int rank = comm->rank(comm->ctx), size = comm->size(comm->ctx);
    if (size < 1 || size > (1 << 20) || rank < 0 || rank >= size)
        return dsc_fail(opt, DSC_OUT_OF_RANGE, "set_comm: rank %d of size %d", rank, size);
    struct dsc_shard *s = dsc_calloc(1, sizeof *s);
    if (!s) return dsc_fail(opt, DSC_NO_MEMORY, "set_comm: out of memory");
    s->comm = *comm;
    s->rank = rank;
    s->size = size;
    dsc_optimizer_resolve_hypers(opt); /* pieces copy p->hp (plan may read it) */
    /* Sharded, no group measures its own update norm (dsc_group_tracks_update):
     * every parameter gets its copy for it first. */
    dsc_status st = DSC_OK;
    for (int i = 0; i < opt->nparams && st == DSC_OK; i++) {
        dsc_param *p = opt->params[i];
        if (opt->want_stats && !p->prev && !(p->prev = dsc_calloc(p->numel, sizeof(float))))
            st = dsc_fail(opt, DSC_NO_MEMORY, "set_comm: parameter \"%s\": out of memory",
                          p->name);
    }
    if (st == DSC_OK) st = build(opt, s);
    /* Agree: every rank built, and every rank has the same set-up. */
    int built = st == DSC_OK;
    double fp = built ? fingerprint(opt) : -1.0;
    double *votes = s->flags ? s->flags : NULL;
    if (!votes) {
        shard_free(s);
        return st;
    }
    /* votes: fingerprints of every rank (0 where a rank failed to build) */
    for (int r = 0; r < size; r++) votes[r] = 0.0;
    votes[rank] = built ? fp + 1.0 : 0.0;
    if (comm->allreduce_sum(comm->ctx, votes, (size_t)size, DSC_COMM_F64) != 0) {
        shard_free(s);
        return comm_fail(opt, "set_comm: all-reduce", 1);
    }
    int bad = -1, differ = -1;
    for (int r = 0; r < size; r++) {
        if (votes[r] == 0.0 && bad < 0) bad = r;
        if (votes[r] != votes[0] && differ < 0) differ = r;
    }
    if (st != DSC_OK) {
        shard_free(s);
        return st; /* message from build */
    }
    if (bad >= 0) {
        shard_free(s);
        return dsc_fail(opt, DSC_STATE, "set_comm: rank %d could not shard its optimizer "
                        "(see its message); no rank is sharded", bad);
    }
    if (differ >= 0) {
        shard_free(s);
        return dsc_fail(opt, DSC_MISMATCH, "set_comm: rank %d has other groups, parameters "
                        "or shapes than rank 0; every rank must set up the same optimizer",
                        differ);
    }
    /* The caller's optimizer keeps no state: free it (and per-parameter
     * workspaces; group workspaces stay where the driver uses them). */
    for (int i = 0; i < opt->nparams; i++) {
        dsc_param *p = opt->params[i];
        for (int k = 0; k < p->nslots; k++) dsc_free(p->slots[k].data), p->slots[k].data = NULL;
        p->nslots = 0;
        dsc_free(p->scratch);
        p->scratch = NULL;
        p->scratch_bytes = 0;
    }
    for (int gi = 0; gi < opt->ngroups; gi++) {
        dsc_group *g = opt->groups[gi];
        for (int k = 0; k < g->nslots; k++) dsc_free(g->slots[k].data), g->slots[k].data = NULL;
        g->nslots = 0;
        if (g->wrap.coord_clip <= 0) {
            dsc_free(g->scratch);
            g->scratch = NULL;
            g->scratch_bytes = 0;
        }
    }
    opt->shard = s;
    return DSC_OK;
}

/* ------------------------------------------------------------------ step */

dsc_status dsc_shard_scan(dsc_optimizer *opt, int norms, size_t *bad, const char **first_bad,
                          double *sumsq, double *sumabs, double *absmax)
{
    struct dsc_shard *s = opt->shard;
    int n = opt->nparams;
    for (int i = 0; i < n; i++) {
        double *o = s->scan + 4 * (size_t)i;
        o[0] = o[1] = o[2] = o[3] = 0.0;
        if (s->scan_owner[i] != s->rank) continue;
        const dsc_param *p = opt->params[i];
        if (norms) {
            dsc_grad_scan g = dsc_vec_scan(p->grad, p->numel);
            o[0] = g.sumsq, o[1] = g.sumabs, o[2] = g.absmax, o[3] = (double)g.nonfinite;
        } else {
            o[3] = (double)dsc_vec_count_nonfinite(p->grad, p->numel);
        }
    }
    int rc = s->comm.allreduce_sum(s->comm.ctx, s->scan, 4 * (size_t)n, DSC_COMM_F64);
    if (rc != 0) return comm_fail(opt, "gradient scan all-reduce", rc);
    /* In parameter order, as the single-process driver adds them. */
    double sq = 0, sa = 0, mx = 0;
    size_t nb = 0;
    for (int i = 0; i < n; i++) {
        const double *o = s->scan + 4 * (size_t)i;
        if (o[3] != 0.0 && !*first_bad) *first_bad = opt->params[i]->name;
        nb += (size_t)o[3];
        sq += o[0];
        sa += o[1];
        if (o[2] > mx) mx = o[2];
    }
    *bad = nb;
    *sumsq = sq, *sumabs = sa, *absmax = mx;
    return DSC_OK;
}

/* Pieces see this step's buffers, gradient and hyperparameters. */
static void sync_pieces(dsc_optimizer *opt)
{
    struct dsc_shard *s = opt->shard;
    dsc_optimizer *local = s->local;
    for (int q = 0; q < local->nparams; q++) {
        dsc_param *pc = local->params[q];
        const dsc_param *p = opt->params[s->piece_outer[q]];
        pc->data = p->data + s->piece_off[q];
        pc->grad = p->grad + s->piece_off[q];
        pc->grad_user = p->grad_user + s->piece_off[q];
        pc->rng_index = s->piece_outer[q]; /* the whole parameter's streams */
        pc->rng_offset = s->piece_off[q];
        memcpy(pc->hp, p->hp, sizeof pc->hp);
    }
    for (int gi = 0; gi < local->ngroups; gi++) {
        memcpy(local->groups[gi]->cur, opt->groups[gi]->cur, sizeof local->groups[gi]->cur);
        memcpy(local->groups[gi]->base, opt->groups[gi]->base, sizeof local->groups[gi]->base);
    }
}

/* The families' checks run on the pieces, which hold the state (the
 * caller's parameters gave theirs up in set_comm). Every rank checks the
 * same hyperparameters against state planned the same way, so all ranks
 * agree without a collective. */
dsc_status dsc_shard_validate(dsc_optimizer *opt)
{
    dsc_optimizer *local = opt->shard->local;
    sync_pieces(opt);
    for (int gi = 0; gi < local->ngroups; gi++) {
        const dsc_group *g = local->groups[gi];
        if (g->nparams == 0 || !g->family->validate) continue;
        dsc_status st = g->family->validate(g);
        if (st != DSC_OK) return dsc_fail(opt, st, "%s", local->error);
    }
    return DSC_OK;
}

dsc_status dsc_shard_step(dsc_optimizer *opt, const dsc_step_ctx *ctx)
{
    struct dsc_shard *s = opt->shard;
    dsc_optimizer *local = s->local;
    sync_pieces(opt);
    for (int gi = 0; gi < local->ngroups; gi++) {
        dsc_group *g = local->groups[gi];
        if (g->nparams == 0) continue;
        dsc_status st = g->family->step(g, ctx);
        if (st != DSC_OK) {
            return dsc_fail(opt, st, "step: group \"%s\": %s", g->name, local->error);
        }
    }
    /* Gather the new values. */
    for (int i = 0; i < opt->nparams; i++) {
        dsc_param *p = opt->params[i];
        int rc = 0;
        if (s->kind[i] == SH_ELEMENTWISE) {
            const size_t *c = s->counts + (size_t)i * s->size;
            int single = -1;
            for (int r = 0; r < s->size; r++)
                if (c[r] == p->numel) single = r;
            /* One owner: a broadcast moves the same bytes with less setup. */
            if (single >= 0)
                rc = s->comm.broadcast(s->comm.ctx, p->data, p->numel, DSC_COMM_F32, single);
            else
                rc = s->comm.allgatherv(s->comm.ctx, p->data, c,
                                        s->displs + (size_t)i * s->size, DSC_COMM_F32);
        } else if (s->kind[i] == SH_TENSOR) {
            rc = s->comm.broadcast(s->comm.ctx, p->data, p->numel, DSC_COMM_F32, s->owner[i]);
        }
        if (rc != 0) return comm_fail(opt, "parameter gather", rc);
    }
    return DSC_OK;
}

/* --------------------------------------------------------------- queries */

static size_t slots_bytes(const dsc_slot *sl, int n)
{
    size_t b = 0;
    for (int k = 0; k < n; k++) b += sl[k].count * dsc_dtype_size(sl[k].dtype);
    return b;
}

size_t dsc_shard_state_bytes(const dsc_optimizer *opt)
{
    const dsc_optimizer *local = opt->shard->local;
    size_t b = 0;
    for (int q = 0; q < local->nparams; q++)
        b += slots_bytes(local->params[q]->slots, local->params[q]->nslots);
    for (int gi = 0; gi < local->ngroups; gi++)
        b += slots_bytes(local->groups[gi]->slots, local->groups[gi]->nslots);
    return b;
}

size_t dsc_shard_param_state_bytes(const dsc_optimizer *opt, int i)
{
    const struct dsc_shard *s = opt->shard;
    size_t b = 0;
    for (int q = 0; q < s->local->nparams; q++)
        if (s->piece_outer[q] == i)
            b += slots_bytes(s->local->params[q]->slots, s->local->params[q]->nslots);
    return b;
}

/* ----------------------------------------------------------- checkpoints */

/* "<path>.rank<r>-of-<N>": one file per rank beside the manifest. */
static void shard_path(char *out, size_t n, const char *path, int rank, int size)
{
    snprintf(out, n, "%s.rank%d-of-%d", path, rank, size);
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* A group's configuration (keys, their initial values, schedules), from the
 * caller's optimizer to this rank's local one or back. */
static void copy_group_config(dsc_group *dst, const dsc_group *src)
{
    memcpy(dst->base, src->base, sizeof dst->base);
    memcpy(dst->init, src->init, sizeof dst->init);
    memcpy(dst->sched, src->sched, sizeof dst->sched);
    dst->sched_mask = src->sched_mask;
}

/* The local optimizer mirrors the caller's counters and configuration. */
static void sync_local(dsc_optimizer *opt)
{
    dsc_optimizer *local = opt->shard->local;
    local->step = opt->step;
    local->stats = opt->stats;
    for (int gi = 0; gi < local->ngroups; gi++)
        copy_group_config(local->groups[gi], opt->groups[gi]);
    for (int q = 0; q < local->nparams; q++) {
        dsc_param *pc = local->params[q];
        const dsc_param *p = opt->params[opt->shard->piece_outer[q]];
        memcpy(pc->override_value, p->override_value, sizeof pc->override_value);
        pc->override_mask = p->override_mask;
        pc->no_decay = p->no_decay;
    }
}

static int write_manifest(const char *path, int size, int64_t step, char *err, size_t errlen)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "path too long");
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "cannot create \"%.300s\": %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "%s 1\nworld_size %d\nstep %" PRId64 "\n", MANIFEST_MAGIC, size, step);
    for (int r = 0; r < size; r++) {
        char sp[4200];
        shard_path(sp, sizeof sp, base_name(path), r, size);
        fprintf(f, "shard %d %s\n", r, sp);
    }
    int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write \"%.300s\": %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

dsc_status dsc_shard_save(dsc_optimizer *opt, const char *path)
{
    struct dsc_shard *s = opt->shard;
    char sp[4200];
    if (strlen(path) > 4000) return dsc_fail(opt, DSC_INVALID_ARGUMENT, "save: path too long");
    if (opt->micro > 0) /* the same on every rank: no vote needed */
        return dsc_fail(opt, DSC_STATE, "save: %d accumulated micro-steps are pending "
                        "(save after an update)", opt->micro);
    shard_path(sp, sizeof sp, path, s->rank, s->size);
    sync_local(opt);
    s->local->seed = opt->seed; /* the rank files carry the caller's seed */
    dsc_status st = dsc_optimizer_save(s->local, sp);
    char mine[DSC_ERR_MAX];
    snprintf(mine, sizeof mine, "%s", st == DSC_OK ? "" : s->local->error);
    int nbad = vote(s, st != DSC_OK);
    if (nbad < 0) return comm_fail(opt, "save: all-reduce", 1);
    if (nbad > 0) {
        if (st != DSC_OK) return dsc_fail(opt, st, "save (rank %d): %s", s->rank, mine);
        return dsc_fail(opt, DSC_IO, "save: rank %d could not write its shard (see its "
                        "message); no manifest was written", first_voter(s));
    }
    /* Every shard is on disk: rank 0 commits the manifest. */
    char err[512] = "";
    int failed = s->rank == 0 ? write_manifest(path, s->size, opt->step, err, sizeof err) : 0;
    nbad = vote(s, failed != 0);
    if (nbad < 0) return comm_fail(opt, "save: all-reduce", 1);
    if (nbad > 0) {
        if (failed) return dsc_fail(opt, DSC_IO, "save: manifest: %s", err);
        return dsc_fail(opt, DSC_IO, "save: rank 0 could not write the manifest \"%s\"", path);
    }
    return DSC_OK;
}

/* A whole decimal integer that fits a long long. */
static int manifest_int(const char *text, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || errno) return 0;
    *out = v;
    return 1;
}

/* Reads a manifest; 0 on success, -1 (not a manifest at all), -2 (malformed). */
static int read_manifest(const char *path, int *size, int64_t *step)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -3;
    char magic[64] = "", vtext[24] = "", ztext[24] = "", stext[24] = "";
    int rc = -1;
    /* Numbers are read as text and converted with strtoll: scanf's %d on
     * an out-of-range number is undefined behaviour. */
    if (fscanf(f, "%63s %23s", magic, vtext) == 2 && strcmp(magic, MANIFEST_MAGIC) == 0) {
        rc = -2;
        long long version, ws, st;
        if (manifest_int(vtext, &version) && version == 1 &&
            fscanf(f, " world_size %23s step %23s", ztext, stext) == 2 &&
            manifest_int(ztext, &ws) && ws >= 1 && ws <= INT_MAX &&
            manifest_int(stext, &st) && st >= 0) {
            *size = (int)ws;
            *step = st;
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

int dsc_shard_is_manifest(const char *path)
{
    int size;
    int64_t step;
    if (!path) return 0;
    int rc = read_manifest(path, &size, &step);
    return rc == 0 || rc == -2;
}

/* Copy of the local optimizer's state, to undo a load another rank refused. */
typedef struct {
    unsigned char *bytes;
    int64_t step;
    dsc_step_stats stats;
} snapshot;

static int take_snapshot(const dsc_optimizer *local, snapshot *sn)
{
    size_t total = 0;
    for (int q = 0; q < local->nparams; q++)
        total += slots_bytes(local->params[q]->slots, local->params[q]->nslots);
    for (int gi = 0; gi < local->ngroups; gi++)
        total += slots_bytes(local->groups[gi]->slots, local->groups[gi]->nslots);
    sn->bytes = dsc_malloc(total ? total : 1);
    if (!sn->bytes) return 0;
    unsigned char *at = sn->bytes;
    for (int q = 0; q < local->nparams; q++)
        for (int k = 0; k < local->params[q]->nslots; k++) {
            const dsc_slot *sl = &local->params[q]->slots[k];
            size_t b = sl->count * dsc_dtype_size(sl->dtype);
            memcpy(at, sl->data, b), at += b;
        }
    for (int gi = 0; gi < local->ngroups; gi++)
        for (int k = 0; k < local->groups[gi]->nslots; k++) {
            const dsc_slot *sl = &local->groups[gi]->slots[k];
            size_t b = sl->count * dsc_dtype_size(sl->dtype);
            memcpy(at, sl->data, b), at += b;
        }
    sn->step = local->step;
    sn->stats = local->stats;
    return 1;
}

static void restore_snapshot(dsc_optimizer *local, const snapshot *sn)
{
    const unsigned char *at = sn->bytes;
    for (int q = 0; q < local->nparams; q++)
        for (int k = 0; k < local->params[q]->nslots; k++) {
            dsc_slot *sl = &local->params[q]->slots[k];
            size_t b = sl->count * dsc_dtype_size(sl->dtype);
            memcpy(sl->data, at, b), at += b;
        }
    for (int gi = 0; gi < local->ngroups; gi++)
        for (int k = 0; k < local->groups[gi]->nslots; k++) {
            dsc_slot *sl = &local->groups[gi]->slots[k];
            size_t b = sl->count * dsc_dtype_size(sl->dtype);
            memcpy(sl->data, at, b), at += b;
        }
    local->step = sn->step;
    local->stats = sn->stats;
}

dsc_status dsc_shard_load(dsc_optimizer *opt, const char *path)
{
    int msize = 0;
    int64_t mstep = 0;
    int mrc = read_manifest(path, &msize, &mstep);
    struct dsc_shard *s = opt->shard;
    if (!s) /* only reached for a manifest (checkpoint.c checks) */
        return dsc_fail(opt, DSC_MISMATCH, "load: \"%s\" is a sharded checkpoint written by %d "
                        "ranks; load it on %d ranks with dsc_optimizer_set_comm (e.g. under "
                        "mpirun -np %d): resharding a checkpoint is not supported", path, msize,
                        msize, msize);
    /* Local checks, then the shard, then one vote: all load or none. */
    dsc_status st = DSC_OK;
    char mine[DSC_ERR_MAX] = "";
    if (strlen(path) > 4000) {
        st = DSC_INVALID_ARGUMENT;
        snprintf(mine, sizeof mine, "path too long");
    } else if (mrc == -3) {
        st = DSC_IO;
        snprintf(mine, sizeof mine, "cannot open \"%.300s\": %s", path, strerror(errno));
    } else if (mrc == -1) {
        st = DSC_MISMATCH;
        snprintf(mine, sizeof mine, "\"%.300s\" is not a sharded checkpoint (a single-process "
                 "one?); a sharded optimizer on %d ranks loads only the manifest of a sharded "
                 "checkpoint saved by %d ranks (resharding is not supported)", path, s->size,
                 s->size);
    } else if (mrc == -2) {
        st = DSC_CORRUPT;
        snprintf(mine, sizeof mine, "\"%.300s\": malformed sharded-checkpoint manifest", path);
    } else if (msize != s->size) {
        st = DSC_MISMATCH;
        snprintf(mine, sizeof mine, "\"%.300s\" was saved by %d ranks and this run has %d: each "
                 "rank's shard holds the state of its own slice of every group, and "
                 "resharding is not supported; resume with %d ranks", path, msize, s->size,
                 msize);
    }
    snapshot sn = {NULL, 0, {0}};
    int loaded = 0;
    if (st == DSC_OK) {
        char sp[4200];
        shard_path(sp, sizeof sp, path, s->rank, s->size);
        if (!take_snapshot(s->local, &sn)) {
            st = DSC_NO_MEMORY;
            snprintf(mine, sizeof mine, "out of memory");
        } else {
            sync_local(opt);
            st = dsc_optimizer_load(s->local, sp);
            if (st != DSC_OK) {
                snprintf(mine, sizeof mine, "%s", s->local->error);
            } else {
                loaded = 1;
                if (s->local->step != mstep) {
                    st = DSC_MISMATCH;
                    snprintf(mine, sizeof mine, "shard \"%.300s\" is at step %lld but the manifest "
                             "says %lld (a shard of another save)", sp,
                             (long long)s->local->step, (long long)mstep);
                }
            }
        }
    }
    int nbad = vote(s, st != DSC_OK);
    if (nbad != 0) {
        if (loaded) restore_snapshot(s->local, &sn);
        dsc_free(sn.bytes);
        if (nbad < 0) return comm_fail(opt, "load: all-reduce", 1);
        if (st != DSC_OK)
            return dsc_fail(opt, st, "load (rank %d): %s; no rank loaded anything", s->rank,
                            mine);
        return dsc_fail(opt, DSC_MISMATCH, "load: rank %d could not load its shard (see its "
                        "message); no rank loaded anything", first_voter(s));
    }
    dsc_free(sn.bytes);
    /* Back into the caller's optimizer. */
    dsc_optimizer *local = s->local;
    for (int gi = 0; gi < opt->ngroups; gi++)
        copy_group_config(opt->groups[gi], local->groups[gi]);
    for (int q = 0; q < local->nparams; q++) {
        dsc_param *p = opt->params[s->piece_outer[q]];
        const dsc_param *pc = local->params[q];
        memcpy(p->override_value, pc->override_value, sizeof p->override_value);
        p->override_mask = pc->override_mask;
        p->no_decay = pc->no_decay;
    }
    opt->step = local->step;
    opt->seed = local->seed;
    opt->micro = 0;
    opt->stats.step = local->stats.step;
    opt->stats.skipped_total = local->stats.skipped_total;
    opt->stats.zeroed_total = local->stats.zeroed_total;
    return DSC_OK;
}
