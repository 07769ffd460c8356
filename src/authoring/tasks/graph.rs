//! The graph algorithms task grouping needs, on tasks or streams numbered from 0: reachability,
//! dependency cycles, strongly connected components (Tarjan) and union-find.

use std::collections::{BTreeMap, HashMap};

/// Whether `to` can be reached from `from` along `edges`.
pub(super) fn reaches(n: usize, edges: &[(usize, usize)], from: usize, to: usize) -> bool {
    let mut next = vec![Vec::new(); n];
    for &(a, b) in edges {
        next[a].push(b);
    }
    let mut seen = vec![false; n];
    let mut stack = vec![from];
    while let Some(v) = stack.pop() {
        if v == to {
            return true;
        }
        if std::mem::replace(&mut seen[v], true) {
            continue;
        }
        stack.extend(next[v].iter().copied());
    }
    false
}

pub(super) fn group_of(n: usize, groups: &[Vec<usize>]) -> Vec<usize> {
    let mut of = vec![0; n];
    for (g, members) in groups.iter().enumerate() {
        for &t in members {
            of[t] = g;
        }
    }
    of
}

/// Each task dependency cycle once, as task indices starting at its earliest task.
pub(super) fn cycles(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut graph = vec![Vec::new(); n];
    for &(from, to) in edges {
        graph[from].push(to);
    }
    let mut out = Vec::new();
    for component in strongly_connected(&graph) {
        let start = *component.iter().min().expect("not empty");
        if component.len() == 1 && !graph[start].contains(&start) {
            continue;
        }
        // A path from `start` back to itself inside the component (breadth first: the
        // shortest, which reads best).
        let mut previous: HashMap<usize, usize> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut end = None;
        'search: while let Some(v) = queue.pop_front() {
            for &w in &graph[v] {
                if !component.contains(&w) {
                    continue;
                }
                if w == start {
                    end = Some(v);
                    break 'search;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = previous.entry(w) {
                    e.insert(v);
                    queue.push_back(w);
                }
            }
        }
        let mut path = Vec::new();
        let mut at = end.expect("a component has a cycle through every member");
        while at != start {
            path.push(at);
            at = previous[&at];
        }
        // Edges point from a task to what waits for it, and the path was walked back from its
        // end: from `start` on, each task depends on the next.
        path.insert(0, start);
        out.push(path);
    }
    out.sort();
    out
}

/// Tarjan's strongly connected components, each sorted.
pub(super) fn strongly_connected(graph: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        graph: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for k in 0..s.graph[v].len() {
            let w = s.graph[v][k];
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(i) if s.on_stack[w] => s.low[v] = s.low[v].min(i),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            component.sort_unstable();
            s.out.push(component);
        }
    }
    let n = graph.len();
    let mut s = State {
        graph,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

pub(super) struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    pub(super) fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
        }
    }

    pub(super) fn find(&mut self, x: usize) -> usize {
        let mut root = x;
        while self.parent[root] != root {
            root = self.parent[root];
        }
        let mut at = x;
        while self.parent[at] != root {
            let next = self.parent[at];
            self.parent[at] = root;
            at = next;
        }
        root
    }

    /// The smaller index becomes the root, so a group's root is its first task.
    pub(super) fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (keep, join) = (ra.min(rb), ra.max(rb));
            self.parent[join] = keep;
        }
    }

    /// Every group's members in list order, groups ordered by their first task.
    pub(super) fn groups(&mut self) -> Vec<Vec<usize>> {
        let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for t in 0..self.parent.len() {
            let root = self.find(t);
            by_root.entry(root).or_default().push(t);
        }
        by_root.into_values().collect()
    }
}
