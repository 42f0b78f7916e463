//! `state` and `list`: what the store records and the status now.

use super::ContainerState;
use crate::error::Result;
use crate::state::{self, Store};

/// The container's state now.
pub fn state(store: &Store, id: &str) -> Result<ContainerState> {
    let saved = store.load_any(id)?;
    let status = state::status_of(&store.dir(id), &saved);
    Ok(ContainerState { saved, status })
}

/// Every container under the store's root, in directory order; a record that
/// cannot be read is left out.
pub fn list(store: &Store) -> Result<Vec<ContainerState>> {
    let mut all = Vec::new();
    for id in store.ids()? {
        let Ok(saved) = store.load_any(&id) else { continue };
        let status = state::status_of(&store.dir(&id), &saved);
        all.push(ContainerState { saved, status });
    }
    Ok(all)
}
