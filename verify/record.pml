/*
 * The record protocol of one idempotency key, for spin.
 *
 * What is modelled: one key's record in the store; N concurrent requests (the
 * 0 and 2 with the same fingerprint, 1 with another) on two Lambda
 * instances (requests 0 and 2 share instance 0, its clock and its warm cache);
 * per-instance clocks off true time by up to SKEW; begin (the conditional put),
 * the fenced completion and failure, the takeover of a lapsed lease, expiry and
 * the read-side expiry check, TTL, the sweeper's query and conditional delete,
 * the warm cache of completed records; a begin whose answer is lost (the SDK
 * sends the same put again), completions and failures delayed in the network
 * past their sender's end and delivered twice (an SDK retry), a process that
 * crashes at any step, and Lambda stopping an invocation at its deadline.
 *
 * Rules: every `inline` below whose name has no `env_` prefix is one function
 * of src/record.rs, under the same name, computing the same predicate
 * (tests/it/model.rs fails when a rule exists in one place and not the other).
 * `env_` inlines are the stores' translations of the rules (src/store) and the
 * world around them.
 *
 * Time is in ticks; one tick stands for both a second and a millisecond, so
 * `now_ms` and `now_secs` are the same clock reading.
 *
 * Planted defects (make verify shows spin finds each):
 *   -DDEFECT_UNFENCED      the completion is conditional on PENDING only, not
 *                          on the lease token (no fencing)
 *   -DDEFECT_SHORT_LEASE   the lease is a fixed 1 tick from the local clock,
 *                          shorter than the invocation (the hardening issue's bug)
 *   -DDEFECT_SWEEP_UNCONDITIONAL  the sweeper deletes what its query found
 *                          without re-checking expiry
 */

#define N 3             /* concurrent requests */
/* When requests arrive: 0 and 1 together early, 2 (the same request as 0, on
 * the same instance) late enough to find 0's lease lapsed or its record
 * expired. Widen the windows with -D to check more (see VERIFICATION.md). */
#ifndef EARLY_LAST
#define EARLY_LAST 1    /* requests 0 and 1 arrive at 0 .. EARLY_LAST */
#endif
#ifndef LATE_FIRST
#define LATE_FIRST 2    /* request 2 arrives at LATE_FIRST .. T_LAST_START */
#endif
#ifndef T_LAST_START
#define T_LAST_START 5
#endif
#define INV 1           /* an invocation's length: Lambda stops it after this */
#define SKEW 1          /* each instance's clock is within SKEW of true time */
#define MARGIN 2        /* the lease margin added to the deadline (> SKEW) */
#define EXPIRY 2        /* the configured expiry */
#define AFTER_LEASE 1   /* EXPIRY_AFTER_LEASE_MS: a record outlives its lease */
/* The clock stops here; every record has expired, and TTL may delete it, by then. */
#define TMAX (T_LAST_START + INV + SKEW + MARGIN + AFTER_LEASE + 2)

#ifdef DEFECT_SHORT_LEASE
#define LEASE_END(deadline, local_now) (local_now + 1)
#else
#define LEASE_END(deadline, local_now) (deadline + MARGIN)
#endif

/* The fingerprint of request j: requests 0 and 2 are the same request. */
#define FP(j) ((j) % 2 + 1)

mtype = { NONE, PENDING, COMPLETED, ERRORED };              /* record status */
mtype = { O_STARTED, O_REPLAY, O_INFLIGHT, O_MISMATCH };     /* begin outcome */
mtype = { C_NONE, C_REPLAY, C_INFLIGHT, C_MISMATCH };        /* Conflict */
mtype = { A_NONE, A_WRITTEN, A_LOST };                       /* write answer */

/* The record. `resp_fp` is the fingerprint of the request whose handler
 * produced the stored response (0: none). */
mtype st = NONE;
byte fp;
byte tok;
short lease_end;
short exp;
byte resp_fp;

/* The world. */
short now = 0;                 /* true time */
short skew[3];                 /* clock offset of instance 0, 1, and the sweeper */
bool alive[N];
bool killed[N];                /* stopped: deadline passed, or crashed */
short deadline[N];
bool in_handler[N];
byte holder_tok[N];
byte running = 0;              /* handlers running now */
byte completions = 0;          /* completions written in this record lifetime */
byte crashes = 0;

/* Completions and failures in the network: kind, token, copies
 * not yet delivered, and the answer the sender sees. */
mtype msg_kind[N];
byte copies[N];
mtype answered[N];

/* The warm cache of completed records, per instance. */
bool cache_ok[2];
byte cache_fp[2];
byte cache_resp[2];
short cache_exp[2];

/* ---------------------------------------------------------------- rules */

/* Record::is_expired */
inline is_expired(now_secs, r) {
    r = (exp < now_secs)
}

/* Record::lease_lapsed */
inline lease_lapsed(now_ms, r) {
    r = (lease_end < now_ms)
}

/* Record::may_begin_over */
inline may_begin_over(f, now_l, r) {
    is_expired(now_l, r);
    if
    :: !r ->
        lease_lapsed(now_l, r);
        r = (fp == f && ((st == PENDING && r) || st == ERRORED))
    :: else -> skip
    fi
}

/* Record::conflict_with */
inline conflict_with(f, now_l, c) {
    may_begin_over(f, now_l, mb_);
    if
    :: mb_ -> c = C_NONE
    :: !mb_ && fp != f -> c = C_MISMATCH
    :: !mb_ && fp == f && st == COMPLETED -> c = C_REPLAY
    :: !mb_ && fp == f && st == PENDING -> c = C_INFLIGHT
    :: !mb_ && fp == f && st == ERRORED -> c = C_NONE
    fi
}

/* expires_at_for */
inline expires_at_for(now_l, lend, e) {
    if
    :: now_l + EXPIRY >= lend + AFTER_LEASE -> e = now_l + EXPIRY
    :: else -> e = lend + AFTER_LEASE
    fi
}

/* Record::pending */
inline pending(f, t, lend, now_l) {
    st = PENDING;
    fp = f;
    tok = t;
    lease_end = lend;
    expires_at_for(now_l, lend, exp);
    resp_fp = 0
}

/* The holder's token and when its lease and record end. */
/* Record::lease */
inline lease(t_out, lend_out, exp_out) {
    t_out = tok;
    lend_out = lease_end;
    exp_out = exp
}

/* Record::held_by */
inline held_by(t, r) {
    r = (tok == t && st == PENDING)
}

/* Record::completed_under */
inline completed_under(t, r) {
    r = (tok == t && st == COMPLETED)
}

/* Record::already_written */
inline already_written(t, s, f, r) {
    r = (tok == t && st == s && (s != COMPLETED || resp_fp == f))
}

/* ---------------------------------------------------------------- the stores */

/* The conditional put (may_begin_over as the condition), and on a failed
 * condition BeginOutcome::blocked_by over the returned item: the request's own
 * token means its earlier, unanswered put was applied. */
inline env_store_begin(f, t, lend, now_l, outcome, rep) {
    if
    :: st == NONE ->
        completions = 0;       /* a new record lifetime */
        pending(f, t, lend, now_l);
        outcome = O_STARTED
    :: else ->
        may_begin_over(f, now_l, mb);
        if
        :: mb ->
            is_expired(now_l, r);
            if
            :: r -> completions = 0   /* expired: a new lifetime */
            :: else -> skip           /* takeover or retry after an error */
            fi;
            pending(f, t, lend, now_l);
            outcome = O_STARTED
        :: !mb && tok == t -> outcome = O_STARTED
        :: !mb && tok != t ->
            conflict_with(f, now_l, conf);
            if
            :: conf == C_REPLAY -> outcome = O_REPLAY; rep = resp_fp
            :: conf == C_INFLIGHT -> outcome = O_INFLIGHT
            :: conf == C_MISMATCH -> outcome = O_MISMATCH
            fi
        fi
    fi
}

/* The fenced update of request j's message (held_by as the condition), and on
 * a failed condition WriteOutcome::after_failed_fence. */
inline env_store_write(j) {
#ifdef DEFECT_UNFENCED
    w = (st == PENDING);
#else
    held_by((j + 1), w);
#endif
    if
    :: w ->
        /* No completion by a holder that lost its lease. */
        assert(tok == (j + 1));
        st = msg_kind[j];
        if
        :: msg_kind[j] == COMPLETED ->
            resp_fp = FP(j);
            completions++;
            /* At most one completed execution per record lifetime. */
            assert(completions <= 1)
        :: else -> skip
        fi;
        answered[j] = A_WRITTEN
    :: else ->
        already_written((j + 1), msg_kind[j], FP(j), w);
        if
        :: w -> answered[j] = A_WRITTEN
        :: else -> answered[j] = A_LOST
        fi
    fi
}

inline env_deliver(j) {
    atomic {
        copies[j] > 0 ->
        copies[j]--;
        env_store_write(j);
        /* Nobody reads the answer of a sender that is gone. */
        if
        :: !alive[j] ->
            answered[j] = A_NONE;
            if
            :: copies[j] == 0 -> msg_kind[j] = 0
            :: else -> skip
            fi
        :: else -> skip
        fi;
        w = false
    }
}

/* Stops request j: its handler, if running, stops with it. */
inline env_stop(j) {
    if
    :: in_handler[j] -> in_handler[j] = false; holder_tok[j] = 0; running--
    :: else -> skip
    fi;
    /* Last: the process's `unless` escape takes over as soon as it is set. */
    killed[j] = true
}

/* Lambda stops an invocation past its deadline. */
inline env_kill(j) {
    if
    :: alive[j] && !killed[j] && now > deadline[j] -> env_stop(j)
    :: else -> skip
    fi
}

/* ---------------------------------------------------------------- processes */

proctype Request(byte i; byte f) {
    short dl, lnow, lend, my_lend, my_exp;   /* my_* : the lease, read once */
    byte t, c, rep, my_tok;
    bool mb, mb_, r, w, retried, lost;
    mtype outcome, conf;

    c = i % 2;
    t = i + 1;      /* the request's lease token, unique to it */
end_arrive:
    atomic {
        ((i != 2 && now <= EARLY_LAST) || (i == 2 && now >= LATE_FIRST && now <= T_LAST_START)) ->
        dl = now + INV;
        deadline[i] = dl;
        alive[i] = true;
        /* The warm cache answers only a replay, never once expired. */
        lnow = now + skew[c];
        if
        :: cache_ok[c] && cache_fp[c] == f && !(cache_exp[c] < lnow) ->
            /* A replay only returns the response stored under its fingerprint. */
            assert(cache_resp[c] == f);
            goto done
        :: else -> skip
        fi;
        lnow = 0
    }
    {
        skip;
send_begin:
        atomic {
            lnow = now + skew[c];
            lend = LEASE_END(dl, lnow);
            env_store_begin(f, t, lend, lnow, outcome, rep);
            /* The answer may be lost once; the SDK then sends the same put
             * again. Or the process crashes here, its put applied. */
            if
            :: !retried -> retried = true; lost = true
            :: true -> lost = false
            :: crashes == 0 -> crashes++; env_stop(i); lost = true
            fi;
            if
            :: lost -> skip
            :: !lost && outcome == O_REPLAY ->
                assert(rep == f);
                cache_ok[c] = true; cache_fp[c] = f; cache_resp[c] = rep; cache_exp[c] = exp
            :: !lost && (outcome == O_INFLIGHT || outcome == O_MISMATCH) -> skip
            :: !lost && outcome == O_STARTED ->
                lease(my_tok, my_lend, my_exp);
                /* The handler starts: never two at once for one key. */
                assert(running == 0);
                running++;
                in_handler[i] = true;
                holder_tok[i] = t
            fi;
            /* Temporaries dead from here: cleared, so they split no states. */
            lnow = 0; lend = 0; my_lend = 0; my_tok = 0; my_exp = 0; rep = 0;
            mb = false; mb_ = false; r = false; conf = 0
        }
        if
        :: lost -> goto send_begin
        :: !lost && outcome != O_STARTED -> goto done
        :: else -> outcome = 0; retried = false
        fi;
        /* The handler ends (succeeds or fails) and its completion or failure,
         * fenced on the token, goes out; the network may hold it past this
         * process's end, and an SDK retry may deliver it twice. */
        atomic {
            if
            :: crashes == 0 -> crashes++; env_stop(i)   /* crashes mid-handler */
            :: true -> skip
            fi;
            !killed[i];
            in_handler[i] = false;
            holder_tok[i] = 0;
            running--;
            if
            :: msg_kind[i] = COMPLETED
            :: msg_kind[i] = ERRORED
            fi;
            answered[i] = A_NONE;
            if
            :: copies[i] = 1
            :: copies[i] = 2
            fi
        }
        atomic {
            answered[i] != A_NONE ->
            if
            :: answered[i] == A_WRITTEN && msg_kind[i] == COMPLETED ->
                completed_under(t, w);
                if
                :: w -> cache_ok[c] = true; cache_fp[c] = f; cache_resp[c] = f; cache_exp[c] = exp
                :: else -> skip
                fi
            :: else -> skip
            fi;
            w = false
        }
    } unless {
        killed[i]
    };
done:
    /* Gone: what only this process read is cleared (its messages stay). */
    atomic {
        alive[i] = false; killed[i] = false; deadline[i] = 0;
        dl = 0; lnow = 0; lend = 0; my_lend = 0; my_exp = 0; rep = 0; my_tok = 0;
        mb = false; mb_ = false; r = false; w = false; retried = false; lost = false;
        outcome = 0; conf = 0
    }
}

/* True time advances; Lambda stops invocations past their deadline. TTL
 * deletes expired records late: here at the end of the horizon (the sweeper
 * deletes early). */
proctype Clock() {
    do
    :: atomic { now < TMAX -> now++; env_kill(0); env_kill(1); env_kill(2) }
    :: atomic {
        now >= TMAX ->
        if
        :: st != NONE && exp < now -> st = NONE
        :: else -> skip
        fi
       };
       break
    od
}

/* Delivers messages in flight, in any order, at any time, even after their
 * sender ended. */
proctype Network() {
    bool w;
end_net:
    do
    :: env_deliver(0)
    :: env_deliver(1)
    :: env_deliver(2)
    od
}

/* The sweeper, once: a query of the expiry index, later the conditional delete
 * (expires_at < now on its own clock) of what it found. */
proctype Sweeper() {
    short snow;
    bool d;
    byte k;
end_sweep:
    atomic { st != NONE && exp < now + skew[2] -> skip }
    atomic {
        snow = now + skew[2];
#ifdef DEFECT_SWEEP_UNCONDITIONAL
        d = (st != NONE);
#else
        d = (st != NONE && exp < snow);
#endif
        if
        :: d ->
            /* The sweeper never deletes a record begun again: whatever it
             * deletes has expired (to within the clock skew), and no handler
             * is running under it. */
            assert(exp <= now + SKEW);
            for (k : 0 .. N - 1) {
                assert(!(in_handler[k] && holder_tok[k] == tok))
            }
            st = NONE
        :: else -> skip
        fi;
        snow = 0; d = false; k = 0
    }
}

init {
    byte s;
    atomic {
        select (s : 0 .. 2 * SKEW); skew[0] = s - SKEW;
        select (s : 0 .. 2 * SKEW); skew[1] = s - SKEW;
        /* The sweeper's clock runs ahead: it sees records expire earliest. */
        skew[2] = SKEW;
        run Clock();
        run Network();
#ifndef NO_SWEEPER
        run Sweeper();
#endif
        /* Requests 0 and 2 share instance 0 (clock and cache) and a fingerprint;
         * request 1 sends another request under the same key. */
        run Request(0, 1);
        run Request(1, 2);
        run Request(2, 1)
    }
}

/* No key stays PENDING forever: under weak fairness, every run ends with the
 * record not PENDING (completed, errored, or expired and removed). */
ltl no_pending_forever { <> [] (st != PENDING) }
