/*
 * restart.pml: the voted restart of protocol 2 (DESIGN section 7), for spin.
 * Three authorities: nodes 0 and 1 are honest, node 2 (M) is malicious. Read
 * model/README.md first: it says what is abstracted, the fault model, each
 * property and how model/run checks them. Compile-time switches:
 *   -DLIVE            liveness run: network reliable after a global
 *                     stabilisation time (GST), checked with ltl "live"
 *   -DUNBOUND_VOTES   votes name (proposer, id) only, like protocol 1:
 *                     must violate P1
 *   -DVOTE_OPEN_RULE  an honest node may vote again once its open vote is
 *                     decided (DESIGN's literal rule): must violate P5
 *                     (with -DWIDE)
 *   -DNO_TICK_VOTE    tick does not vote for a proposal the node holds once
 *                     its vote lock lapses: must fail liveness against a
 *                     malicious proposer (-DMNOVOTE)
 *   -DIGNORE_EVIDENCE a node that sees equivocation does nothing about it:
 *                     must violate P3
 *   -DNO_COOLDOWN     the executor forgets the cooldown: must violate P2
 *   -DP3_UNCONDITIONAL P3 without "unless the evidence could not reach
 *                     them": must be violated (a lossy network allows it)
 * and, to size the searches (model/run): -DSKEW1, -DNOSKEW, -DMPMAX=n,
 * -DMOWN (M votes for its own proposals only), -DMNOVOTE (M never votes),
 * -DMFULL, -DWIDE (an `at` window wider than two skews), -DTSTEPS=n,
 * -DHPMAX=n, -DGSTMAX=t.
 */

#define N       3               /* authorities */
#define HON     2               /* nodes 0..HON-1 are honest */
#define M       2               /* the malicious authority */
#define Q       2               /* quorum: floor(N/2)+1 */
#ifdef LIVE
#ifndef HPMAX
#define HPMAX   2               /* honest proposals (node 0's tick, one open at a time) */
#endif
#ifndef MPMAX
#define MPMAX   0               /* malicious proposals */
#endif
#else
#define HPMAX   1
#ifndef MPMAX
#define MPMAX   2
#endif
#endif
#define NP      4               /* proposal slots (digests ph = 0..NP-1), >= HPMAX + MPMAX */
#define NONE    255

/* Time: discrete steps (model/README.md, "Clocks"). Times are bytes; true
 * time starts at T0 so that a clock behind it stays >= 0. */
#define SK      1               /* clock skew: each honest clock is true time +-SK */
#define T0      2
#define ATMIN   1               /* at - iat in [ATMIN, ATMAX] (the "at window") */
#if defined(LIVE) || defined(WIDE)
/* The liveness run (and -DWIDE) has room for a window longer than 2 skews,
 * as the real one (20 s .. 10 min against 2 x 60 s): tick's vote and vote
 * evidence need `at` 2 skews ahead. The safety runs keep the short window
 * (a smaller search). */
#define ATMAX   4
#define LIFE    5               /* exp - iat <= LIFE */
#define COOL    5               /* cooldown, never shorter than the at window */
#else
#define ATMAX   2
#define LIFE    3
#define COOL    3
#endif
#ifdef LIVE
#define TMAX    (T0 + 14)       /* room for one expired proposal and a retry */
#ifndef GSTMAX
#define GSTMAX  (T0 + 2)        /* the network is reliable from here at the latest */
#endif
#else
#ifndef TSTEPS
#define TSTEPS  4
#endif
#define TMAX    (T0 + TSTEPS)
#endif

#define bit(x)        (1 << (x))
#define has(s, x)     (((s) & bit(x)) != 0)
#define L(i)          (now + off[i] - SK)       /* node i's local clock */
#define pop3(s)       (((s) & 1) + (((s) >> 1) & 1) + (((s) >> 2) & 1))
#define samekey(p, q) (p_by[p] == p_by[q] && p_id[p] == p_id[q])

/* ---- the world: true time, the signed messages that exist ---- */
byte now = T0;
bool gst;                       /* LIVE: the network has stabilised */
byte np;                        /* proposals issued (slots 0..np-1) */
byte p_by[NP], p_id[NP], p_iat[NP], p_at[NP], p_exp[NP];
byte signedv[NP];               /* authorities that signed a vote for ph p */
byte evpool;                    /* authorities against whom evidence was gossiped */
byte hprops;                    /* honest proposals made by node 0 */
byte hlast;                     /* slot of node 0's last proposal */
bool hclosed;                   /* node 0 decided hlast: open/<me> deleted */

/* ---- honest node state (index 0..HON-1): what its store holds ---- */
byte off[HON];                  /* clock offset + SK, fixed at start */
byte seenp[HON];                /* well-signed proposals received (evidence records) */
byte known[HON];                /* proposals accepted and recorded */
byte gotv[HON * NP];            /* [i*NP+p]: valid votes held for p */
byte evid[HON];                 /* authorities this node holds evidence against */
byte dec[HON];                  /* proposals decided (and not withdrawn) */
byte ran[HON];                  /* proposals the executor has handled */
byte myvote[HON];               /* ph of this node's last vote, or NONE */
byte lastr[HON];                /* local time of the last restart, or 0 = never */
bool sick[HON];

/* scratch for the inlines below: hidden, so not part of the state */
hidden byte cq, cm, wp, wc, tc, lq, rq, bv, xp, xc, xj, xq, fi_, fp, fv, tv;
hidden byte snp, s0, s1, s2, s3, sev;
hidden byte ok_p1, ok_p2, ok_p3, ok_p4, ok_p5; /* so that pan's report names the property */

/* ---- ghosts: only for the properties, never read by the protocol ---- */
byte reach[HON];                /* P3: evidence against a was delivered to node i */
byte restarts[HON];             /* proposals node i restarted for */
byte xreach[HON];               /* P3: reach[i] had p_by[p] when i restarted for p */
bool restarted[HON];            /* liveness */

/* count(i, p, c): distinct valid votes node i holds for p, ignoring every
 * authority it holds evidence against. */
#ifndef UNBOUND_VOTES
#define count(i, p, c) c = pop3(gotv[(i) * NP + (p)] & ~evid[i])
#else
/* protocol 1: a vote names (proposer, id) only, so votes held for any
 * proposal with the same key count for p */
inline count(i, p, c)
{
	cq = 0;
	cm = 0;
	do
	:: cq < np -> if :: samekey(p, cq) -> cm = cm | gotv[(i) * NP + cq] :: else fi; cq++
	:: else -> break
	od;
	c = pop3(cm & ~evid[i])
}
#endif

/* Withdraw every not yet executed decision that lost its quorum. */
inline withdraw(i)
{
	wp = 0;
	do
	:: wp < np ->
		if
		:: has(dec[i], wp) && !has(ran[i], wp) ->
			count(i, wp, wc);
			if
			:: wc < Q || has(evid[i], p_by[wp]) -> dec[i] = dec[i] & ~bit(wp)
			:: else
			fi
		:: else
		fi;
		wp++
	:: else -> break
	od
}

/* Node i now holds evidence against authority a: ignore a from now on,
 * re-tally (withdraw), gossip the evidence. */
inline raise(i, a)
{
	if
	:: !has(evid[i], a) ->
		ok_p5 = (a == M);                  /* P5: no honest authority is ever framed */
		assert(ok_p5);
#ifndef IGNORE_EVIDENCE
		evid[i] = evid[i] | bit(a);
		evpool = evpool | bit(a);
		withdraw(i)
#else
		skip                    /* the variant: evidence changes nothing */
#endif
	:: else
	fi
}

/* Decide p if it has a quorum here, before at and before exp (once). */
inline tally(i, p)
{
	if
	:: has(known[i], p) && !has(dec[i], p) && !has(ran[i], p) && !has(evid[i], p_by[p]) ->
		count(i, p, tc);
		if
		:: tc >= Q && L(i) < p_exp[p] && L(i) <= p_at[p] ->
			ok_p1 = (pop3(signedv[p]) >= Q);   /* P1: a quorum signed this exact ph */
			assert(ok_p1);
			ok_p4 = (L(i) < p_exp[p] && now < p_exp[p] + SK); /* P4: before exp */
			assert(ok_p4);
			dec[i] = dec[i] | bit(p);
			if :: i == 0 && p == hlast && p_by[p] == 0 -> hclosed = true :: else fi /* the decision ends open/<by> */
		:: else
		fi
	:: else
	fi
}

/* Honest vote (restart.vote_if_sick): sick, an authority, the proposal's
 * `at` not passed here, and no open vote of its own (restart.lua open_vote):
 * the node is locked until the `at` of its last vote by its own clock.
 * Step L of a clock stands for the seconds before `at` when L == at (the
 * executor runs at the end of that step), so Lua's `now < at` is
 * `L(i) <= at` here. VOTE_OPEN_RULE: DESIGN's literal rule, vote again once
 * the earlier proposal is decided (or its `at` passed). */
#ifdef VOTE_OPEN_RULE
#define voteblocked(i) (myvote[i] != NONE && L(i) <= p_at[myvote[i]] && !has(dec[i], myvote[i]))
#else
#define voteblocked(i) (myvote[i] != NONE && L(i) <= p_at[myvote[i]])
#endif
inline vote(i, p)
{
	if
	:: sick[i] && !voteblocked(i) && myvote[i] != p && L(i) <= p_at[p] ->
		signedv[p] = signedv[p] | bit(i);    /* into the network, retried by tick */
		gotv[(i) * NP + (p)] = gotv[(i) * NP + (p)] | bit(i);
		myvote[i] = p
	:: else
	fi
}

/* Node i receives the signed proposal p (alone, or carried by a vote or a
 * bundle). A well-signed proposal is recorded for evidence whatever its
 * times; it is accepted only inside its lifetime (+-SK) and window. */
inline learn(i, p)
{
	lq = 0;
	do                              /* ghost first: did a conflicting pair reach i? */
	:: lq < np -> if :: has(seenp[i], lq) && lq != p && samekey(p, lq) -> reach[i] = reach[i] | bit(p_by[p]) :: else fi; lq++
	:: else -> break
	od;
	seenp[i] = seenp[i] | bit(p);
	lq = 0;
	do                              /* the protocol: two proposals, one (by, id) */
	:: lq < np -> if :: has(seenp[i], lq) && lq != p && samekey(p, lq) -> raise(i, p_by[p]) :: else fi; lq++
	:: else -> break
	od;
	if
	:: has(evid[i], p_by[p]) || has(known[i], p) -> skip
	:: p_iat[p] > L(i) + SK -> skip           /* future: dropped, sent again later */
	:: p_exp[p] + SK <= L(i) -> skip          /* expired */
	:: p_at[p] < p_iat[p] + ATMIN || p_at[p] > p_iat[p] + ATMAX || p_exp[p] > p_iat[p] + LIFE || p_at[p] >= p_exp[p] -> skip
	:: else ->
		known[i] = known[i] | bit(p);
		vote(i, p);
		tally(i, p)
	fi
}

/* Node i receives v's vote for ph p. */
inline recvvote(i, v, p)
{
#ifndef UNBOUND_VOTES
	learn(i, p);                    /* the vote carries its proposal */
#endif
	if
	:: !has(evid[i], v) && p_iat[p] <= L(i) + SK && p_exp[p] + SK > L(i) ->
#ifndef UNBOUND_VOTES
		rq = 0;
		do                          /* two live votes of v (restart.lua record_vote): both
		                             * `at` more than 2 skews ahead here, Lua's
		                             * min(at, at2) > now + LIVE_MARGIN_S */
		:: rq < np -> if :: rq != p && has(gotv[(i) * NP + rq], v) && p_at[rq] >= L(i) + 2 * SK && p_at[p] >= L(i) + 2 * SK -> raise(i, v) :: else fi; rq++
		:: else -> break
		od;
#endif
		if
		:: !has(evid[i], v) ->
			gotv[(i) * NP + (p)] = gotv[(i) * NP + (p)] | bit(v);
#ifndef UNBOUND_VOTES
			tally(i, p)
#else
			rq = 0;                 /* every known proposal with this key */
			do
			:: rq < np -> if :: samekey(p, rq) -> tally(i, rq) :: else fi; rq++
			:: else -> break
			od
#endif
		:: else
		fi
	:: else
	fi
}

/* A relay bundle: the proposal and every vote signed for it so far. A
 * bundle with fewer votes is a sequence of single deliveries. */
inline recvbundle(i, p)
{
	bv = 0;
	learn(i, p);
	do
	:: bv < N -> if :: has(signedv[p], bv) -> recvvote(i, bv, p) :: else fi; bv++
	:: else -> break
	od
}

inline recvevid(i, a)
{
	reach[i] = reach[i] | bit(a);   /* ghost */
	raise(i, a)
}

#ifndef NO_COOLDOWN
#define COOLED(i) (lastr[i] == 0 || L(i) >= lastr[i] + COOL)
#else
#define COOLED(i) true          /* the variant: no cooldown */
#endif
/* The executor, at the end of each step: restart for every decision whose
 * at is now on this node's clock, after re-checking it; at most once per
 * proposal and not within the cooldown. */
inline execute(i)
{
	xp = 0;
	do
	:: xp < np ->
		if
		:: has(dec[i], xp) && !has(ran[i], xp) && p_at[xp] == L(i) ->
			ran[i] = ran[i] | bit(xp);
			count(i, xp, xc);
			if
			:: xc >= Q && !has(evid[i], p_by[xp]) && COOLED(i) ->
				/* P2: at most one restart per cooldown (true time) */
				ok_p2 = (lastr[i] == 0 || now >= lastr[i] - off[i] + SK + COOL);
				assert(ok_p2);
				/* P3: conflicting restarts only where the evidence could not reach one of them */
				xj = 0;
				do
				:: xj < HON ->
					xq = 0;
					do
					:: xq < np ->
						if
						:: xj != i && has(restarts[xj], xq) && xq != xp && samekey(xp, xq) ->
#ifndef P3_UNCONDITIONAL
							ok_p3 = (!has(reach[i], p_by[xp]) || !has(xreach[xj], xq));
#else
							ok_p3 = false;  /* the variant: no conflicting restarts at all */
#endif
							assert(ok_p3)
						:: else
						fi;
						xq++
					:: else -> break
					od;
					xj++
				:: else -> break
				od;
				restarts[i] = restarts[i] | bit(xp);
				if :: has(reach[i], p_by[xp]) -> xreach[i] = xreach[i] | bit(xp) :: else fi;
				lastr[i] = L(i);
				sick[i] = false;
				restarted[i] = true
			:: else
			fi
		:: else
		fi;
		xp++
	:: else -> break
	od
}

/* Node 0's tick (node.tick, then proposer.propose): when sick with no open
 * proposal of its own (open/<me>: until its exp, or until it is decided
 * here) and no open vote (restart.open_vote: a proposal of its own would
 * compete with the one it voted for), propose restart at iat + ATMAX (a new
 * id each time) and vote for it (its own ballot). */
inline autopropose()
{
	if
	:: sick[0] && hprops < HPMAX && np < NP && (hprops == 0 || L(0) >= p_exp[hlast] || hclosed) && !voteblocked(0) && !restarted[0] ->
		p_by[np] = 0; p_id[np] = hprops; p_iat[np] = L(0);
		p_at[np] = L(0) + ATMAX; p_exp[np] = L(0) + LIFE;
		hprops++;
		hlast = np;
		hclosed = false;
		np++;
		learn(0, np - 1)
	:: else
	fi
}

/* Node i's tick votes on the open proposals it holds (node.vote_open): each
 * one it accepted and has not voted for, whose `at` is still ahead, once its
 * own vote is no longer locked (vote() checks that, and that it is sick).
 * The liveness fix: a node whose vote M locked with a proposal that never
 * completes still votes for the honest proposal it accepted meanwhile.
 * NO_TICK_VOTE: the old tick, which only re-sent votes already cast. */
inline tickvote(i)
{
#ifndef NO_TICK_VOTE
	tv = 0;
	do
	:: tv < np ->
		if
		:: has(known[i], tv) && !has(evid[i], p_by[tv]) && !has(dec[i], tv) && !has(ran[i], tv) && !has(gotv[(i) * NP + tv], i) && p_at[tv] >= L(i) + 2 * SK ->
			vote(i, tv);
			tally(i, tv)
		:: else
		fi;
		tv++
	:: else -> break
	od
#else
	skip
#endif
}

#ifdef LIVE
/* After GST every message in the network reaches every honest node within
 * the step: deliver all of them until nothing new is signed. */
#define pool_same (snp == np && s0 == signedv[0] && s1 == signedv[1] && s2 == signedv[2] && s3 == signedv[3] && sev == evpool)
inline flush()
{
	snp = NONE;
	do
	:: !pool_same ->
		snp = np; s0 = signedv[0]; s1 = signedv[1]; s2 = signedv[2]; s3 = signedv[3]; sev = evpool;
		fi_ = 0;
		do
		:: fi_ < HON ->
			fp = 0;
			do
			:: fp < np ->
				learn(fi_, fp);
				fv = 0;
				do
				:: fv < N -> if :: has(signedv[fp], fv) -> recvvote(fi_, fv, fp) :: else fi; fv++
				:: else -> break
				od;
				fp++
			:: else -> break
			od;
			if :: has(evpool, M) -> recvevid(fi_, M) :: else fi;
			fi_++
		:: else -> break
		od
	:: else -> break
	od
}
#endif

/* The clock: node 0's tick, (LIVE) reliable delivery, the executors at the
 * end of the step, then time moves on. */
proctype Clock()
{
	do
	:: now < TMAX ->
#ifdef LIVE
		if                      /* GST: now, or (before GSTMAX) later */
		:: !gst -> gst = true
		:: !gst && now + 1 < GSTMAX -> skip
		:: else
		fi;
#endif
		d_step {
			tickvote(0);
			tickvote(1);
			autopropose();
#ifdef LIVE
			if :: gst -> flush() :: else fi;
#endif
			execute(0);
			execute(1);
			now++
		}
	:: else -> break
	od
}

/* An honest node: receives any message that exists, any number of times,
 * in any order, or never (loss). LIVE: only before GST; the clock delivers
 * after it. */
#ifdef LIVE
#define CANRECV (!gst && now < TMAX)
#else
#define CANRECV (now < TMAX)
#endif
/* A message the node has not stored yet (a stored one is a no-op: the
 * store's insert-if-absent; see README "duplicates"). */
#define NEWP(i, p)    (!has(known[i], p) && !has(evid[i], p_by[p]))
#define NEWV(i, p, s) ((signedv[p] & (s) & ~gotv[(i) * NP + (p)] & ~evid[i]) != 0)
proctype Node(byte i)
{
end:
	do
	:: d_step { CANRECV && np > 0 && NEWP(i, 0) -> learn(i, 0) }
	:: d_step { CANRECV && np > 0 && (NEWP(i, 0) || NEWV(i, 0, signedv[0])) -> recvbundle(i, 0); skip }
	:: d_step { CANRECV && np > 0 && NEWV(i, 0, bit(0)) -> recvvote(i, 0, 0) }
	:: d_step { CANRECV && np > 0 && NEWV(i, 0, bit(1)) -> recvvote(i, 1, 0) }
	:: d_step { CANRECV && np > 0 && NEWV(i, 0, bit(M)) -> recvvote(i, M, 0) }
	:: d_step { CANRECV && np > 1 && NEWP(i, 1) -> learn(i, 1) }
	:: d_step { CANRECV && np > 1 && (NEWP(i, 1) || NEWV(i, 1, signedv[1])) -> recvbundle(i, 1); skip }
	:: d_step { CANRECV && np > 1 && NEWV(i, 1, bit(0)) -> recvvote(i, 0, 1) }
	:: d_step { CANRECV && np > 1 && NEWV(i, 1, bit(1)) -> recvvote(i, 1, 1) }
	:: d_step { CANRECV && np > 1 && NEWV(i, 1, bit(M)) -> recvvote(i, M, 1) }
	:: d_step { CANRECV && np > 2 && NEWP(i, 2) -> learn(i, 2) }
	:: d_step { CANRECV && np > 2 && (NEWP(i, 2) || NEWV(i, 2, signedv[2])) -> recvbundle(i, 2); skip }
	:: d_step { CANRECV && np > 2 && NEWV(i, 2, bit(0)) -> recvvote(i, 0, 2) }
	:: d_step { CANRECV && np > 2 && NEWV(i, 2, bit(1)) -> recvvote(i, 1, 2) }
	:: d_step { CANRECV && np > 2 && NEWV(i, 2, bit(M)) -> recvvote(i, M, 2) }
	:: d_step { CANRECV && np > 3 && NEWP(i, 3) -> learn(i, 3) }
	:: d_step { CANRECV && np > 3 && (NEWP(i, 3) || NEWV(i, 3, signedv[3])) -> recvbundle(i, 3); skip }
	:: d_step { CANRECV && np > 3 && NEWV(i, 3, bit(0)) -> recvvote(i, 0, 3) }
	:: d_step { CANRECV && np > 3 && NEWV(i, 3, bit(1)) -> recvvote(i, 1, 3) }
	:: d_step { CANRECV && np > 3 && NEWV(i, 3, bit(M)) -> recvvote(i, M, 3) }
	:: d_step { CANRECV && has(evpool, M) && !has(evid[i], M) -> recvevid(i, M) }
	od
}

/* The malicious authority: signs any proposal with its own key (one id
 * twice, any at, any iat +-1, short exp) and votes for anything, at any
 * time. It cannot sign for 0 or 1. What it receives does not matter: it
 * may as well know everything. */
#define canvote(p) (now < TMAX && np > (p) && !has(signedv[p], M) && p_exp[p] > now MONLY(p))
#define differs(q, id, t, a, x) (np <= (q) || p_by[q] != M || p_id[q] != (id) || p_iat[q] != (t) || p_at[q] != (a) || p_exp[q] != (x))
#define fresh(id, t, a, x) (differs(0, id, t, a, x) && differs(1, id, t, a, x) && differs(2, id, t, a, x))
#define MPROP(id, dt, da, dx) \
	:: d_step { now < TMAX && np < NP && np - hprops < MPMAX && fresh(id, now + dt, now + dt + da, now + dt + dx) -> \
		p_by[np] = M; p_id[np] = id; p_iat[np] = now + dt; \
		p_at[np] = now + dt + da; p_exp[np] = now + dt + dx; np++ }
#ifdef LIVE
#define MPROPS(id, dt) \
	MPROP(id, dt, 1, LIFE) \
	MPROP(id, dt, 2, LIFE) \
	MPROP(id, dt, 3, LIFE) \
	MPROP(id, dt, 4, LIFE)
#elif defined(MFULL)
#define MPROPS(id, dt) \
	MPROP(id, dt, ATMIN, LIFE - 1) \
	MPROP(id, dt, ATMIN, LIFE) \
	MPROP(id, dt, ATMAX, LIFE)
#else
#define MPROPS(id, dt) \
	MPROP(id, dt, ATMIN, LIFE) \
	MPROP(id, dt, ATMAX, LIFE)
#endif
#ifdef MNOVOTE
#define MONLY(p) && false       /* M only proposes: it locks voters, never completes */
#elif defined(MOWN)
#define MONLY(p) && p_by[p] == M
#else
#define MONLY(p)
#endif
proctype Mal()
{
end:
	do
	MPROPS(0, 0)
#ifdef MFULL
	MPROPS(1, 0)
	MPROPS(0, 1)
	MPROPS(1, 1)
#endif
	:: d_step { canvote(0) -> signedv[0] = signedv[0] | bit(M) }
	:: d_step { canvote(1) -> signedv[1] = signedv[1] | bit(M) }
	:: d_step { canvote(2) -> signedv[2] = signedv[2] | bit(M) }
	:: d_step { canvote(3) -> signedv[3] = signedv[3] | bit(M) }
	od
}

init
{
	atomic {
		myvote[0] = NONE;
		myvote[1] = NONE;
		sick[0] = true;
		sick[1] = true;
#ifdef NOSKEW
		off[0] = SK; off[1] = SK;
#elif defined(SKEW1)
		off[0] = SK;            /* node 0's clock is right, node 1's is +-SK */
		if :: off[1] = 0 :: off[1] = SK :: off[1] = 2 * SK fi;
#else
		if :: off[0] = 0 :: off[0] = 1 :: off[0] = 2 fi;
		if :: off[1] = 0 :: off[1] = 1 :: off[1] = 2 fi;
#endif
		run Clock();
		run Node(0);
		run Node(1);
		if :: MPMAX > 0 -> run Mal() :: else fi
	}
}

#ifdef LIVE
/* Liveness: both honest nodes are sick (a majority); eventually both restart. */
ltl live { <> (restarted[0] && restarted[1]) }
#endif
