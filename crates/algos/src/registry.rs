//! The built-in algorithms as one list ([`Algo`]): names, how many workers
//! each supports, what it is built from, its pseudocode with the line
//! numbers the source comments use, and what goes wrong on a real CPU.

use crate::{
    Bakery, Dekker, Fence, Flag, MutexAlgorithm, Peterson, RaceConfig, RaceError, RaceResult, Tas,
    Ticket, Ttas,
};

/// A built-in algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algo {
    /// [`Flag`]: OSTEP's first attempt.
    Flag,
    /// [`Peterson`] (2 workers).
    Peterson,
    /// [`Dekker`] (2 workers).
    Dekker,
    /// [`Bakery`]: Lamport's, N workers.
    Bakery,
    /// [`Tas`]: test-and-set.
    Tas,
    /// [`Ttas`]: test-and-test-and-set.
    Ttas,
    /// [`Ticket`]: the FIFO ticket lock.
    Ticket,
}

impl Algo {
    /// Every algorithm, the load/store ones first.
    pub const ALL: [Algo; 7] = [
        Algo::Flag,
        Algo::Peterson,
        Algo::Dekker,
        Algo::Bakery,
        Algo::Tas,
        Algo::Ttas,
        Algo::Ticket,
    ];

    /// The name `--algo` takes.
    pub fn name(self) -> &'static str {
        match self {
            Algo::Flag => Flag::NAME,
            Algo::Peterson => Peterson::NAME,
            Algo::Dekker => Dekker::NAME,
            Algo::Bakery => Bakery::NAME,
            Algo::Tas => Tas::NAME,
            Algo::Ttas => Ttas::NAME,
            Algo::Ticket => Ticket::NAME,
        }
    }

    /// The inverse of [`name`](Self::name).
    pub fn parse(s: &str) -> Option<Algo> {
        Algo::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Most workers it supports.
    pub fn max_workers(self) -> u32 {
        match self {
            Algo::Flag => Flag::MAX_WORKERS,
            Algo::Peterson => Peterson::MAX_WORKERS,
            Algo::Dekker => Dekker::MAX_WORKERS,
            Algo::Bakery => Bakery::MAX_WORKERS,
            Algo::Tas => Tas::MAX_WORKERS,
            Algo::Ttas => Ttas::MAX_WORKERS,
            Algo::Ticket => Ticket::MAX_WORKERS,
        }
    }

    /// Built from an atomic read-modify-write (`tas`, `ttas`, `ticket`):
    /// correct with any fence setting.
    pub fn uses_rmw(self) -> bool {
        matches!(self, Algo::Tas | Algo::Ttas | Algo::Ticket)
    }

    /// Whether it is meant to be correct with this fence: the RMW locks
    /// always, Peterson, Dekker and the bakery only fenced, the flag lock
    /// never.
    pub fn correct_with(self, fence: Fence) -> bool {
        match self {
            Algo::Flag => false,
            Algo::Peterson | Algo::Dekker | Algo::Bakery => fence == Fence::SeqCst,
            Algo::Tas | Algo::Ttas | Algo::Ticket => true,
        }
    }

    /// Races it with `fence` ([`crate::race()`]).
    pub fn race(self, fence: Fence, cfg: &RaceConfig) -> Result<RaceResult, RaceError> {
        match self {
            Algo::Flag => crate::race(Flag { fence }, cfg),
            Algo::Peterson => crate::race(Peterson { fence }, cfg),
            Algo::Dekker => crate::race(Dekker { fence }, cfg),
            Algo::Bakery => crate::race(Bakery { fence }, cfg),
            Algo::Tas => crate::race(Tas { fence }, cfg),
            Algo::Ttas => crate::race(Ttas { fence }, cfg),
            Algo::Ticket => crate::race(Ticket { fence }, cfg),
        }
    }

    /// One line: what it is.
    pub fn summary(self) -> &'static str {
        match self {
            Algo::Flag => {
                "OSTEP's first attempt: wait while the flag is up (a load), then raise it (a store)"
            }
            Algo::Peterson => {
                "Peterson's algorithm: raise your flag, give the other the turn, wait while the other wants in and has the turn"
            }
            Algo::Dekker => {
                "Dekker's algorithm: raise your flag; while the other's is up and it is not your turn, lower yours and wait for your turn"
            }
            Algo::Bakery => {
                "Lamport's bakery: take a number one higher than any you see, wait for every smaller number"
            }
            Algo::Tas => "test-and-set: swap 1 into the lock word until the old value was 0",
            Algo::Ttas => {
                "test-and-test-and-set: read the word until it looks free, then swap (less cache traffic)"
            }
            Algo::Ticket => {
                "ticket lock: take a ticket with fetch_add, wait until it is served (first come, first served)"
            }
        }
    }

    /// The acquire and release code as numbered lines, with the fence line
    /// as `fence` makes it. Line numbers match the comments in the source.
    pub fn pseudocode(self, fence: Fence) -> Vec<String> {
        // The fence line, indented like the code around it.
        let f = |n: &str, indent: usize| {
            let pad = " ".repeat(indent);
            match fence {
                Fence::SeqCst => format!("{n:>2}  {pad}mfence;   // --fence seqcst: fence(SeqCst)"),
                Fence::None => format!("{n:>2}  {pad}/* no fence */   // --fence none"),
            }
        };
        let l = |s: &str| s.to_string();
        match self {
            Algo::Flag => vec![
                l(" 1  while (flag == 1) ;             // test"),
                l(" 2  flag = 1;                       // set"),
                f("3", 0),
                l("    critical section"),
                l(" 4  flag = 0;"),
            ],
            Algo::Peterson => vec![
                l(" 1  flag[me] = true;"),
                l(" 2  turn = other;"),
                f("3", 0),
                l(" 4  while (flag[other] && turn == other) ;"),
                l("    critical section"),
                l(" 5  flag[me] = false;"),
            ],
            Algo::Dekker => vec![
                l(" 1  flag[me] = true;"),
                f("2", 0),
                l(" 3  while (flag[other]) {"),
                l(" 4      if (turn != me) {"),
                l(" 5          flag[me] = false;"),
                l(" 6          while (turn != me) ;"),
                l(" 7          flag[me] = true;"),
                f("8", 8),
                l("        }"),
                l("    }"),
                l("    critical section"),
                l(" 9  turn = other;"),
                l("10  flag[me] = false;"),
            ],
            Algo::Bakery => vec![
                l(" 1  choosing[me] = true;"),
                f("2", 0),
                l(" 3  number[me] = 1 + max(number[0], ..., number[n-1]);"),
                l(" 4  choosing[me] = false;"),
                f("5", 0),
                l(" 6  for (j = 0; j < n; j++) if (j != me) {"),
                l(" 7      while (choosing[j]) ;"),
                l(" 8      while (number[j] != 0 && (number[j], j) < (number[me], me)) ;"),
                l("    }"),
                l("    critical section"),
                l(" 9  number[me] = 0;"),
            ],
            Algo::Tas => vec![
                l(" 1  while (xchg(&locked, 1) == 1) ;   // one atomic swap"),
                l("    critical section"),
                l(" 2  locked = 0;"),
            ],
            Algo::Ttas => vec![
                l("    for (;;) {"),
                l(" 1      while (locked) ;               // plain loads, in the cache"),
                l(" 2      if (xchg(&locked, 1) == 0) break;"),
                l("    }"),
                l("    critical section"),
                l(" 3  locked = 0;"),
            ],
            Algo::Ticket => vec![
                l(" 1  my = fetch_add(&next, 1);          // lock xadd"),
                l(" 2  while (serving != my) ;"),
                l("    critical section"),
                l(" 3  serving = serving + 1;"),
            ],
        }
    }

    /// In plain words, what the CPU (or the scheduler) did when this
    /// algorithm let two workers in with this fence, and what the fence
    /// forbids; or, for a run that is correct, why.
    pub fn explanation(self, fence: Fence) -> &'static str {
        match (self, fence) {
            (Algo::Flag, _) => {
                "flag: both workers ran line 1 (saw the flag down) before either ran line 2 (raised it). The test and the set are two steps and another worker can run between them; that is interleaving, not reordering, so a fence cannot help. Only an atomic test-and-set (tas) closes the gap."
            }
            (Algo::Peterson, Fence::None) => {
                "peterson, no fence: the store of line 1 (flag[me] = true) waited in the CPU's store buffer while the load of line 4 (flag[other]) ran. Each worker read the other's flag as false, before the other's store was visible, and both walked in. A sequentially consistent machine (OSTEP's x86.py) never does this; x86 does."
            }
            (Algo::Peterson, Fence::SeqCst) => {
                "peterson, mfence: line 3 makes the load of line 4 wait until the stores of lines 1 and 2 are visible to the other core, so at least one worker sees the other's flag and the turn, and waits."
            }
            (Algo::Dekker, Fence::None) => {
                "dekker, no fence: the store of line 1 (or 7), flag[me] = true, was still in the store buffer when line 3 loaded flag[other]: both saw the other's flag down and entered. The fences of lines 2 and 8 forbid that load to run before the store is visible."
            }
            (Algo::Dekker, Fence::SeqCst) => {
                "dekker, mfence: lines 2 and 8 keep each raise of flag[me] ahead of the load of flag[other], so two workers never both see the other's flag down."
            }
            (Algo::Bakery, Fence::None) => {
                "bakery, no fence: the stores of lines 1, 3 and 4 (choosing, number) were still in the store buffer when another worker ran lines 7 and 8, so it read choosing[j] = false and number[j] = 0 for a worker that was in fact taking a number, and both went in. The fences of lines 2 and 5 make each worker's choosing flag and number visible before it reads the others'."
            }
            (Algo::Bakery, Fence::SeqCst) => {
                "bakery, mfence: lines 2 and 5 make choosing[me] and number[me] visible before the loads of lines 3, 7 and 8, which is what Lamport's proof assumes."
            }
            (Algo::Tas, _) | (Algo::Ttas, _) => {
                "tas/ttas: xchg reads the old value and writes 1 in one indivisible step, and on x86 it is a full barrier: no interleaving and no store buffer can hand the lock to two workers. A fence adds nothing."
            }
            (Algo::Ticket, _) => {
                "ticket: lock xadd hands every worker a different ticket in one indivisible step (and is a full barrier), and the tickets are served in order: correct, and first come, first served."
            }
        }
    }
}

impl std::fmt::Display for Algo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let names: Vec<&str> = Algo::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(
            names,
            [
                "flag", "peterson", "dekker", "bakery", "tas", "ttas", "ticket"
            ]
        );
        for a in Algo::ALL {
            assert_eq!(Algo::parse(a.name()), Some(a));
        }
        assert_eq!(Algo::parse("mutex"), None);
    }

    #[test]
    fn pseudocode_shows_the_fence_setting() {
        for a in [Algo::Peterson, Algo::Dekker, Algo::Bakery] {
            let none = a.pseudocode(Fence::None).join("\n");
            let fenced = a.pseudocode(Fence::SeqCst).join("\n");
            assert!(!none.contains("mfence;") && fenced.contains("mfence;"));
        }
        assert_eq!(Algo::Peterson.max_workers(), 2);
        assert_eq!(Algo::Dekker.max_workers(), 2);
        assert!(Algo::Bakery.max_workers() > 2);
    }
}
