//! Applying rumours: alive, suspect, dead and left updates about other members, the
//! suspicion timers they start, and forgetting members gone long enough.

use std::sync::Arc;
use std::time::Instant;

use super::Swim;
use crate::proto::event::{Event, Member};
use crate::proto::suspicion::{Limits, Suspicion, min_timeout};
use crate::wire::{Alive, Dead, Left, Message, Reach, State, Suspect, Update};

impl Swim {
    /// Applies one rumour. `newcomers` is how many unknown members may still be admitted from
    /// the packet being handled.
    pub(super) fn apply(&mut self, now: Instant, u: Update, newcomers: &mut usize) {
        match u {
            Update::Alive(a) => self.apply_alive(now, a, newcomers),
            Update::Suspect(s) => self.apply_suspect(now, s),
            Update::Dead(d) => self.apply_dead(now, d),
            Update::Left(l) => self.apply_left(now, l),
        }
    }

    pub(super) fn apply_alive(&mut self, now: Instant, a: Alive, newcomers: &mut usize) {
        if a.name == self.me.name {
            return self.alive_about_me(now, a);
        }
        let Some(rec) = self.members.get(a.name.as_str()) else {
            return self.admit(now, a, newcomers);
        };
        let m = rec.member();
        if a.run < m.run {
            return;
        }
        // A live member's name claimed from another address, by the same run or a newer one:
        // memberlist's rule, the claim waits until the holder is dead or left. (A restart on
        // the same address replaces the old run at once.)
        if a.addr != m.addr && m.state.is_live() {
            self.events.push_back(Event::NameConflict {
                name: a.name,
                existing: m.addr,
                claimant: a.addr,
            });
            return;
        }
        if a.run == m.run && a.incarnation <= m.incarnation {
            return;
        }
        let old = m.state;
        let restarted = a.run > m.run;
        let updated = a.meta != m.meta || a.addr != m.addr;
        self.queue(&Update::Alive(a.clone()));
        let member = self.change(now, &alive_member(a));
        let event = match old {
            State::Dead | State::Left => Some(Event::Joined(member)),
            _ if restarted => Some(Event::Restarted(member)),
            State::Suspect => {
                self.stats.members_recovered += 1;
                Some(Event::Recovered(member))
            }
            State::Alive => updated.then_some(Event::Updated(member)),
        };
        self.events.extend(event);
    }

    pub(super) fn admit(&mut self, now: Instant, a: Alive, newcomers: &mut usize) {
        if *newcomers == 0 || self.members.len() + 1 >= self.cfg.max_members {
            self.stats.members_refused += 1;
            return;
        }
        *newcomers -= 1;
        self.queue(&Update::Alive(a.clone()));
        let name = self.names.name(&a.name);
        self.order.insert(&mut self.rng, name);
        let member = self.change(now, &alive_member(a));
        self.events.push_back(Event::Joined(member));
    }

    pub(super) fn apply_suspect(&mut self, now: Instant, s: Suspect) {
        if s.name == self.me.name {
            if !self.accused(now, s.run, s.incarnation) {
                return;
            }
            // Answer the accuser directly as well, even when its news is already outdated
            // (it probed with a suspicion this node has refuted): its timer is running, and
            // gossip alone may never bring it the refutation in time.
            if let Some(addr) = self.members.get(&s.from).map(|r| r.member().addr) {
                self.send(addr, vec![Message::Update(self.alive_self())]);
            }
            return;
        }
        let n = self.live_count();
        let reach = s
            .reach
            .filter(|r| self.cfg.crash_evidence || *r != Reach::Refused);
        let Some(rec) = self.members.get_mut(s.name.as_str()) else {
            return;
        };
        if s.run != rec.member().run || s.incarnation < rec.member().incarnation {
            return;
        }
        match rec.member().state {
            State::Dead | State::Left => {}
            State::Suspect => {
                // The suspicion started when the member became suspect.
                let started = rec.changed();
                let Some(susp) = rec.suspicion.as_mut() else {
                    return;
                };
                let old = started + susp.timeout();
                if susp.confirm(&s.from, reach) {
                    self.stats.suspicions_confirmed += 1;
                    let new = started + susp.timeout();
                    // The rumour passed on replaces this node's last one about the member,
                    // so it keeps the news of a live host, whoever brought it. (A refusal
                    // stays with its own accuser: two are needed, from two members.)
                    let reach = if susp.host_up() {
                        Some(Reach::HostUp)
                    } else {
                        s.reach
                    };
                    let name = self.names.name(&s.name);
                    self.suspicions.remove(&(old, name.clone()));
                    self.suspicions.insert((new, name));
                    self.queue(&Update::Suspect(Suspect { reach, ..s }));
                }
            }
            State::Alive => {
                let member = Member {
                    incarnation: s.incarnation,
                    state: State::Suspect,
                    ..rec.member().clone()
                };
                let susp = self.new_suspicion(&s.from, reach, n);
                let heard = s.from != self.me.name;
                self.queue(&Update::Suspect(s));
                let member = self.change(now, &member);
                let name = self.names.name(&member.name);
                self.suspicions.insert((now + susp.timeout(), name.clone()));
                self.members.get_mut(&name).expect("present").suspicion = Some(susp);
                if heard {
                    // Probe it next: a failure here is an independent confirmation.
                    self.order.probe_soon(&name);
                }
                self.events.push_back(Event::Suspect(member));
            }
        }
    }

    /// A suspicion raised by `from` in a mesh of `n` live members. Lifeguard: expect k
    /// confirmations, if that many others exist.
    fn new_suspicion(&self, from: &str, reach: Option<Reach>, n: usize) -> Box<Suspicion> {
        let k = self.cfg.suspicion_confirmations;
        let expected = if n.saturating_sub(2) < k as usize {
            0
        } else {
            k
        };
        let min = min_timeout(self.cfg.suspicion_mult, n, self.cfg.probe_interval);
        let limits = Limits {
            min,
            max: min * self.cfg.suspicion_max_timeout_mult,
            stall: self.cfg.stall_timeout,
        };
        Box::new(Suspicion::new(from, reach, expected, limits))
    }

    pub(super) fn suspicion_expired(&mut self, now: Instant, name: &str) {
        let Some(rec) = self.members.get(name) else {
            return;
        };
        if rec.member().state != State::Suspect {
            return;
        }
        self.stats.deaths_declared += 1;
        let d = Dead {
            name: name.to_owned(),
            run: rec.member().run,
            incarnation: rec.member().incarnation,
            from: self.me.name.clone(),
        };
        self.apply_dead(now, d);
    }

    pub(super) fn apply_dead(&mut self, now: Instant, d: Dead) {
        let (run, incarnation) = (d.run, d.incarnation);
        let name = d.name.clone();
        self.apply_gone(now, &name, (run, incarnation), State::Dead, Update::Dead(d));
    }

    pub(super) fn apply_left(&mut self, now: Instant, l: Left) {
        let (run, incarnation) = (l.run, l.incarnation);
        let name = l.name.clone();
        self.apply_gone(now, &name, (run, incarnation), State::Left, Update::Left(l));
    }

    /// A rumour that `name`'s run `run` is dead or has left at `incarnation` (`state`).
    /// About this node, it is refuted; about another, it applies to the same run at that
    /// incarnation or newer, unless the member is already past it: dead applies only to a
    /// live member, left to anything but left. The rumour is passed on.
    fn apply_gone(
        &mut self,
        now: Instant,
        name: &str,
        (run, incarnation): (u64, u32),
        state: State,
        rumour: Update,
    ) {
        if name == self.me.name {
            self.accused(now, run, incarnation);
            return;
        }
        let Some(rec) = self.members.get(name) else {
            return;
        };
        let m = rec.member();
        let applies = match state {
            State::Dead => m.state.is_live(),
            _ => m.state != State::Left,
        };
        if run != m.run || incarnation < m.incarnation || !applies {
            return;
        }
        let member = Member {
            incarnation,
            state,
            ..m.clone()
        };
        self.queue(&rumour);
        let member = self.change(now, &member);
        self.events.push_back(if state == State::Dead {
            Event::Dead(member)
        } else {
            Event::Left(member)
        });
    }

    /// Sets the record of `m.name` to `m` (adding it if new), keeping the pools, timers and
    /// tombstones in step with its state. Returns a copy of the member for the event.
    pub(super) fn change(&mut self, now: Instant, m: &Member) -> Member {
        let name = self.names.name(&m.name);
        let member = self.names.member(m);
        if let Some(previous) = self.members.set(name.clone(), Arc::clone(&member), now) {
            if let Some(s) = previous.suspicion {
                self.suspicions
                    .remove(&(previous.changed + s.timeout(), name.clone()));
            }
            if matches!(previous.state, State::Dead | State::Left) {
                self.gone.remove(&(previous.changed, name.clone()));
            }
        }
        if matches!(member.state, State::Dead | State::Left) {
            self.gone.insert((now, name));
        }
        (*member).clone()
    }

    pub(super) fn reap(&mut self, now: Instant) {
        while let Some((at, name)) = self.gone.first().cloned() {
            if at + self.cfg.dead_retention > now {
                break;
            }
            self.gone.pop_first();
            self.members.remove(&name);
            self.forget_user_events(&name);
        }
        self.reap_user_events(now);
    }
}

/// The record an alive rumour describes.
pub(super) fn alive_member(a: Alive) -> Member {
    Member {
        name: a.name,
        addr: a.addr,
        run: a.run,
        incarnation: a.incarnation,
        state: State::Alive,
        meta: a.meta,
    }
}
