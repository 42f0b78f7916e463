//! `state` and `list`: the state JSON, and the table (or JSON) of containers.

use crate::out::outln;
use libhusk::container::{self, ContainerState};
use libhusk::state::Status;
use libhusk::Result;

use super::Runtime;
use crate::cli::ListFormat;

pub fn state(rt: &Runtime, id: &str) -> Result<()> {
    let state = container::state(&rt.store, id)?;
    let json = serde_json::to_string_pretty(&state.oci_state()).expect("state serialises");
    outln!("{json}");
    Ok(())
}

pub fn list(rt: &Runtime, format: ListFormat, quiet: bool) -> Result<()> {
    let all = container::list(&rt.store)?;
    if quiet {
        for c in &all {
            outln!("{}", c.saved.id);
        }
        return Ok(());
    }
    match format {
        ListFormat::Json => {
            let states: Vec<_> = all.iter().map(ContainerState::oci_state).collect();
            outln!("{}", serde_json::to_string(&states).expect("serialises"));
        }
        ListFormat::Table => print_table(&all),
    }
    Ok(())
}

fn print_table(all: &[ContainerState]) {
    let mut table = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for ContainerState { saved: s, status } in all {
        let pid = if *status == Status::Stopped { 0 } else { s.pid };
        table.push([
            s.id.clone(),
            pid.to_string(),
            status.to_string(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| table.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in &table {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        outln!("{}", line.join("   ").trim_end());
    }
}
