//! The rules about `depends_on`: every entry names a stream of the plan (with a suggestion when
//! it is misspelt), none is listed twice, and the streams form a DAG (each cycle reported once,
//! with every edge in it pointed at).

use std::collections::HashMap;

use crate::plan::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::plan::raw::{RawFile, suggest};

pub(super) fn check_dependencies(file: &RawFile, diags: &mut Diagnostics) {
    let names: Vec<Option<&str>> = file
        .streams
        .iter()
        .map(|s| s.name.as_ref().map(|n| n.value.as_str()))
        .collect();
    let known: Vec<&str> = names.iter().flatten().copied().collect();
    let index_of = |name: &str| names.iter().position(|n| *n == Some(name));

    // Edges: stream -> the streams it depends on, each with the span of the entry.
    let mut edges: Vec<Vec<(usize, Span)>> = vec![Vec::new(); file.streams.len()];
    for (i, stream) in file.streams.iter().enumerate() {
        let mut listed: Vec<&str> = Vec::new();
        for dep in &stream.depends_on {
            if listed.contains(&dep.value.as_str()) {
                diags.push(
                    Diagnostic::warning(format!("`{}` is listed twice in `depends_on`", dep.value))
                        .at(dep.span.clone(), "listed again here"),
                );
                continue;
            }
            listed.push(&dep.value);
            match index_of(&dep.value) {
                Some(j) => edges[i].push((j, dep.span.clone())),
                None => {
                    let others: Vec<&str> = known
                        .iter()
                        .copied()
                        .filter(|k| Some(*k) != names[i])
                        .collect();
                    let help = match suggest(&dep.value, &others) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None if others.is_empty() => "this plan has no other stream".to_string(),
                        // Every stream, this one too: a list without it reads as if it were
                        // missing from the plan.
                        None => format!("the streams are: {}", known.join(", ")),
                    };
                    diags.push(
                        Diagnostic::error(format!(
                            "unknown stream `{}` in `depends_on`",
                            dep.value
                        ))
                        .at(dep.span.clone(), "no stream has this name")
                        .help(help),
                    );
                }
            }
        }
    }

    for cycle in cycles(&edges) {
        let name = |i: usize| names[i].unwrap_or("?");
        let path: Vec<&str> = cycle
            .iter()
            .map(|&i| name(i))
            .chain(std::iter::once(name(cycle[0])))
            .collect();
        let edge_span = |from: usize, to: usize| {
            edges[from]
                .iter()
                .find(|(t, _)| *t == to)
                .map(|(_, span)| span.clone())
                .expect("cycle edges exist")
        };
        let mut diagnostic = if cycle.len() == 1 {
            Diagnostic::error(format!("stream `{}` depends on itself", name(cycle[0])))
        } else {
            Diagnostic::error(format!("dependency cycle: {}", path.join(" -> ")))
        };
        for k in 0..cycle.len() {
            let (from, to) = (cycle[k], cycle[(k + 1) % cycle.len()]);
            let label = format!("`{}` depends on `{}`", name(from), name(to));
            diagnostic = if k == 0 {
                diagnostic.at(edge_span(from, to), label)
            } else {
                diagnostic.also(edge_span(from, to), label)
            };
        }
        diags.push(diagnostic.help("streams must form a DAG: remove one of these dependencies"));
    }
}

/// One cycle per strongly connected component that has one, each starting at its first stream
/// in file order (Tarjan's algorithm, then a breadth-first search inside the component).
fn cycles(edges: &[Vec<(usize, Span)>]) -> Vec<Vec<usize>> {
    struct Tarjan<'a> {
        edges: &'a [Vec<(usize, Span)>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        components: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &(w, _) in &self.edges[v] {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                self.components.push(component);
            }
        }
    }
    let n = edges.len();
    let mut t = Tarjan {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    let mut found = Vec::new();
    for component in t.components {
        let start = *component.iter().min().expect("components are not empty");
        let self_loop = edges[start].iter().any(|(w, _)| *w == start);
        if component.len() == 1 && !self_loop {
            continue;
        }
        if self_loop {
            found.push(vec![start]);
            continue;
        }
        // Shortest way back to `start` within the component.
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(v) = queue.pop_front() {
            for &(w, _) in &edges[v] {
                if w == start {
                    last = Some(v);
                    break 'search;
                }
                if component.contains(&w) && !parent.contains_key(&w) {
                    parent.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        let mut cycle = Vec::new();
        let mut at = last.expect("a strongly connected component has a cycle");
        while at != start {
            cycle.push(at);
            at = parent[&at];
        }
        cycle.push(start);
        cycle.reverse();
        found.push(cycle);
    }
    found.sort_by_key(|c| c[0]);
    found
}
