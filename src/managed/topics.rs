//! The active topics: what `topics` shows and what every reconnect replays.

use std::collections::HashSet;

use crate::protocol::client::{json_string_len, topics_frame_len};

/// Topics in subscription order, for `topics` and for the replay.
#[derive(Default, Debug, Clone)]
pub(super) struct TopicSet {
    pub(super) order: Vec<String>,
    pub(super) members: HashSet<String>,
    /// The members' summed `json_string_len`: the replay frame's size without building it.
    pub(super) encoded: usize,
}

impl TopicSet {
    pub(super) fn insert_new(&mut self, topics: Vec<String>) -> Vec<String> {
        let new: Vec<String> = topics
            .into_iter()
            .filter(|t| self.members.insert(t.clone()))
            .collect();
        self.encoded += new.iter().map(|t| json_string_len(t)).sum::<usize>();
        self.order.extend(new.iter().cloned());
        new
    }

    pub(super) fn remove_present(&mut self, topics: Vec<String>) -> Vec<String> {
        let gone: Vec<String> = topics
            .into_iter()
            .filter(|t| self.members.remove(t))
            .collect();
        if !gone.is_empty() {
            self.encoded -= gone.iter().map(|t| json_string_len(t)).sum::<usize>();
            self.order.retain(|t| self.members.contains(t));
        }
        gone
    }

    pub(super) fn replay_frame_len(&self) -> usize {
        topics_frame_len("SUBSCRIBE", None, self.order.len(), self.encoded)
    }
}
