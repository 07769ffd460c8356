//! Grouping tasks into streams so that no file has two owners.
//!
//! 1. Dependencies between tasks (`depends on T010`) must form no cycle; a cycle is an error
//!    naming its ids. A task that creates a file (one not tracked at `base`) comes before the
//!    tasks that change it (an implicit dependency).
//! 2. Tasks that name the same file, or a file under a directory another names, join one
//!    stream; tasks that name no file join one stream per phase, flagged for review.
//! 3. Streams whose tasks depend on each other both ways are merged (neither could finish
//!    first). Inside a stream tasks run in list order, unless a dependency says otherwise.
//! 4. Dependencies between tasks of different streams become `depends_on`; phases order the
//!    streams that touch (work in one directory, or name no file), the later on the earlier,
//!    when no dependency says the opposite. Dependencies implied by others are left out.
//! 5. Ownership: per file, its directory as `dir/**` when the stream has that whole directory
//!    (every file tracked there, and no other stream names anything in it), the exact path
//!    otherwise; a named directory as `dir/**`.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use super::graph::{self, UnionFind, group_of, strongly_connected};
use super::parse::{TaskList, join_and};
use super::{Problem, RepoView, Task, slug};

/// Streams built from a task list, in the order the plan lists them.
#[derive(Clone, Debug, Default)]
pub struct Grouping {
    pub streams: Vec<GroupedStream>,
}

#[derive(Clone, Debug, Default)]
pub struct GroupedStream {
    pub name: String,
    /// Task indices in the order they run.
    pub tasks: Vec<usize>,
    /// Glob patterns, sorted.
    pub owns: Vec<String>,
    /// Stream indices this one depends on, each with why.
    pub depends_on: Vec<(usize, String)>,
    /// From the tasks' `P0`..`P3` (P0 highest); `None` when no task has one.
    pub priority: Option<i64>,
    /// Its tasks name no file: `owns` is a placeholder the user must replace.
    pub unassigned: bool,
    /// Why these tasks are together, their order, anything to look at: one comment line each.
    pub notes: Vec<String>,
}

/// The directory a generated placeholder `owns` pattern lives under.
pub const PLACEHOLDER_DIR: &str = "unassigned";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Why {
    /// The task list said so.
    Explicit,
    /// `from` creates this path, which `to` names too.
    Creates(String),
}

#[derive(Clone, Debug)]
struct Edge {
    from: usize,
    to: usize,
    why: Why,
}

/// A new directory one task names and others fill: the task that names it (it runs first and
/// owns nothing there), the directory, and the tasks that fill it.
struct Scaffold {
    creator: usize,
    dir: String,
    fillers: Vec<usize>,
}

/// What the steps after grouping share: the tasks (scaffold directories taken out), the
/// dependencies between them, each group's tasks and each task's group.
struct Grouped<'a> {
    list: &'a TaskList,
    tasks: &'a [Task],
    edges: &'a [Edge],
    scaffolds: &'a [Scaffold],
    groups: Vec<Vec<usize>>,
    of: Vec<usize>,
}

impl Grouped<'_> {
    /// Task ids joined for a comment: `T001, T002 and T005`.
    fn ids(&self, ts: &[usize]) -> String {
        join_and(
            &ts.iter()
                .map(|&t| self.tasks[t].id.as_str())
                .collect::<Vec<_>>(),
        )
    }
}

pub fn group(list: &TaskList, view: &RepoView) -> Result<Grouping, Vec<Problem>> {
    let (tasks, scaffolds) = scaffolds(list, view);
    let tasks = &tasks;
    // 1. Task dependencies.
    let edges = dependencies(tasks, &scaffolds, view)?;
    // 2. Tasks sharing files.
    let mut sets = join_sharing(tasks);
    // 3. Streams that depend on each other both ways become one.
    let merged_notes = join_cycles(&mut sets, tasks, &edges);
    let groups = sets.groups();
    let of = group_of(tasks.len(), &groups);
    let g = Grouped {
        list,
        tasks,
        edges: &edges,
        scaffolds: &scaffolds,
        groups,
        of,
    };
    let mut streams: Vec<GroupedStream> = g
        .groups
        .iter()
        .map(|members| describe(&g, members, merged_notes.get(&sets.find(members[0]))))
        .collect();
    // 4. Dependencies between streams.
    for ((from, to), why) in stream_dependencies(&g, &streams) {
        streams[to].depends_on.push((from, why));
    }
    // 5. Ownership.
    let files_of: Vec<BTreeSet<&str>> = g
        .groups
        .iter()
        .map(|members| {
            members
                .iter()
                .flat_map(|&t| tasks[t].files.iter().map(String::as_str))
                .collect()
        })
        .collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        if !stream.unassigned {
            stream.owns = patterns(i, &files_of, view);
        }
    }
    name_streams(&g, &mut streams);
    Ok(Grouping { streams })
}

/// A new directory that one task names and others fill (`T001 Create src/app/ structure`,
/// then `T013 ... in src/app/core/parser.py`) is scaffolding, not ownership: it would put
/// every task into one stream. That task gives the directory up and runs first. Returns the
/// tasks with those directories taken out, and the scaffolds.
fn scaffolds(list: &TaskList, view: &RepoView) -> (Vec<Task>, Vec<Scaffold>) {
    let mut scaffolds = Vec::new();
    let mut adjusted = list.tasks.clone();
    for (t, task) in list.tasks.iter().enumerate() {
        for dir in task.files.iter().filter(|f| f.ends_with('/')) {
            if view.is_dir(dir.trim_end_matches('/')) {
                continue;
            }
            let fillers: Vec<usize> = list
                .tasks
                .iter()
                .enumerate()
                .filter(|(o, other)| {
                    *o != t
                        && other
                            .files
                            .iter()
                            .any(|f| f.starts_with(dir.as_str()) && f != dir)
                })
                .map(|(o, _)| o)
                .collect();
            if !fillers.is_empty() {
                adjusted[t].files.retain(|f| f != dir);
                scaffolds.push(Scaffold {
                    creator: t,
                    dir: dir.clone(),
                    fillers,
                });
            }
        }
    }
    (adjusted, scaffolds)
}

/// The dependencies between tasks: those the list states (a cycle among them is an error
/// naming its ids), then a scaffold before the tasks that fill it and the task that creates a
/// new path before the others that name it (where no stated dependency says the opposite).
fn dependencies(
    tasks: &[Task],
    scaffolds: &[Scaffold],
    view: &RepoView,
) -> Result<Vec<Edge>, Vec<Problem>> {
    let n = tasks.len();
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let mut edges: Vec<Edge> = Vec::new();
    for (t, task) in tasks.iter().enumerate() {
        for d in &task.depends_on {
            if let Some(&from) = index.get(d.as_str()) {
                edges.push(Edge {
                    from,
                    to: t,
                    why: Why::Explicit,
                });
            }
        }
    }
    let pairs: Vec<(usize, usize)> = edges.iter().map(|e| (e.from, e.to)).collect();
    let cycles = graph::cycles(n, &pairs);
    if !cycles.is_empty() {
        return Err(cycles
            .into_iter()
            .map(|cycle| cycle_problem(tasks, &cycle))
            .collect());
    }
    for scaffold in scaffolds {
        for &other in &scaffold.fillers {
            if !reaches(n, &edges, other, scaffold.creator) {
                edges.push(Edge {
                    from: scaffold.creator,
                    to: other,
                    why: Why::Creates(scaffold.dir.clone()),
                });
            }
        }
    }
    let mut named_by: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (t, task) in tasks.iter().enumerate() {
        for f in &task.files {
            named_by.entry(f.as_str()).or_default().push(t);
        }
    }
    for (path, namers) in &named_by {
        let exists = match path.strip_suffix('/') {
            Some(dir) => view.is_dir(dir),
            None => view.is_file(path),
        };
        if exists || namers.len() < 2 {
            continue;
        }
        let creator = namers
            .iter()
            .copied()
            .find(|&t| creates(&tasks[t].text))
            .unwrap_or(namers[0]);
        for &other in namers {
            if other != creator && !reaches(n, &edges, other, creator) {
                edges.push(Edge {
                    from: creator,
                    to: other,
                    why: Why::Creates(path.to_string()),
                });
            }
        }
    }
    Ok(edges)
}

/// A cycle of stated dependencies, as the error that names it.
fn cycle_problem(tasks: &[Task], cycle: &[usize]) -> Problem {
    let id = |k: usize| tasks[cycle[k % cycle.len()]].id.as_str();
    let steps: Vec<String> = (0..cycle.len())
        .map(|k| {
            if k == 0 {
                format!("{} depends on {}", id(0), id(1))
            } else {
                format!("{} on {}", id(k), id(k + 1))
            }
        })
        .collect();
    Problem::new(
        tasks[cycle[0]].at,
        format!(
            "the task dependencies form a cycle: {}; remove one of these dependencies",
            steps.join(", ")
        ),
    )
}

/// Tasks that name the same file, or a file under a directory another names, joined; tasks
/// that name no file joined per phase.
fn join_sharing(tasks: &[Task]) -> UnionFind {
    let n = tasks.len();
    let mut sets = UnionFind::new(n);
    for i in 0..n {
        for j in i + 1..n {
            if conflict(&tasks[i].files, &tasks[j].files) {
                sets.union(i, j);
            }
        }
    }
    let mut fileless: BTreeMap<Option<usize>, usize> = BTreeMap::new();
    for (t, task) in tasks.iter().enumerate() {
        if task.files.is_empty() {
            match fileless.get(&task.phase) {
                Some(&first) => sets.union(first, t),
                None => {
                    fileless.insert(task.phase, t);
                }
            }
        }
    }
    sets
}

/// Joins groups whose tasks wait for each other both ways (neither could finish first), until
/// none do. Returns why, by the joined group's root.
fn join_cycles(
    sets: &mut UnionFind,
    tasks: &[Task],
    edges: &[Edge],
) -> BTreeMap<usize, Vec<String>> {
    let n = tasks.len();
    let mut merged_notes: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    loop {
        let groups = sets.groups();
        let of = group_of(n, &groups);
        let graph = stream_graph(groups.len(), edges, &of);
        let components = strongly_connected(&graph);
        let mut changed = false;
        for component in components.into_iter().filter(|c| c.len() > 1) {
            let firsts: Vec<usize> = component.iter().map(|&g| groups[g][0]).collect();
            let crossing: Vec<String> = edges
                .iter()
                .filter(|e| {
                    of[e.from] != of[e.to]
                        && component.contains(&of[e.from])
                        && component.contains(&of[e.to])
                })
                .map(|e| format!("{} needs {}", tasks[e.to].id, tasks[e.from].id))
                .collect();
            for &f in &firsts[1..] {
                sets.union(firsts[0], f);
            }
            let root = sets.find(firsts[0]);
            merged_notes.entry(root).or_default().push(format!(
                "joined because their tasks wait for each other both ways ({})",
                crossing.join(", ")
            ));
            changed = true;
        }
        if !changed {
            return merged_notes;
        }
    }
}

/// The stream a group of tasks becomes, before its dependencies, ownership and name: its
/// tasks in order, its priority, and its comment lines (why these tasks are together, `joined`
/// why it was joined, their order, anything to look at).
fn describe(g: &Grouped, members: &[usize], joined: Option<&Vec<String>>) -> GroupedStream {
    let tasks = g.tasks;
    let mut stream = GroupedStream {
        unassigned: members.iter().all(|&t| tasks[t].files.is_empty()),
        ..GroupedStream::default()
    };
    // Order inside the stream: list order, unless a dependency says otherwise.
    stream.tasks = order_within(members, g.edges);
    let phases: BTreeSet<usize> = members.iter().filter_map(|&t| tasks[t].phase).collect();
    let phase_text = phases
        .iter()
        .map(|&p| short_phase(&g.list.phases[p].title))
        .collect::<Vec<_>>()
        .join(", ");
    let mut head = g.ids(&stream.tasks);
    if !phase_text.is_empty() {
        head = format!("{head} ({phase_text})");
    }
    if stream.unassigned {
        let (names, it) = if members.len() == 1 {
            ("names", "it")
        } else {
            ("name", "they")
        };
        stream.notes.push(head);
        stream.notes.push(format!(
            "REVIEW: {names} no file, so streams cannot tell what {it} will change: replace the \
             placeholder in `owns` with the paths {it} may edit"
        ));
    } else {
        let reasons = why_together(g, members);
        if reasons.is_empty() {
            stream.notes.push(head);
        } else {
            stream.notes.push(format!("{head}: {}", reasons.join("; ")));
        }
    }
    if let Some(notes) = joined {
        stream.notes.extend(notes.iter().cloned());
    }
    stream.notes.extend(order_notes(g, members));
    stream.notes.extend(scaffold_note(g, members));
    let parallel: Vec<usize> = members
        .iter()
        .copied()
        .filter(|&t| tasks[t].parallel)
        .collect();
    if parallel.len() > 1 && !stream.unassigned {
        stream.notes.push(format!(
            "note: {} are marked [P], but share files: they run one after another here",
            g.ids(&parallel)
        ));
    }
    stream.priority = members
        .iter()
        .filter_map(|&t| tasks[t].priority)
        .min()
        .map(|p| 3 - i64::from(p));
    stream
}

/// Why a group's tasks are together: per path, the tasks that name it, and the tasks that
/// name files in a directory it is.
fn why_together(g: &Grouped, members: &[usize]) -> Vec<String> {
    let tasks = g.tasks;
    let mut reasons = Vec::new();
    let files: BTreeSet<&str> = members
        .iter()
        .flat_map(|&t| tasks[t].files.iter().map(String::as_str))
        .collect();
    for path in &files {
        let namers: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&t| tasks[t].files.iter().any(|f| f == path))
            .collect();
        let inside: Vec<usize> = if path.ends_with('/') {
            members
                .iter()
                .copied()
                .filter(|&t| {
                    !namers.contains(&t)
                        && tasks[t]
                            .files
                            .iter()
                            .any(|f| f.starts_with(path) && f != path)
                })
                .collect()
        } else {
            Vec::new()
        };
        if namers.len() == members.len() && namers.len() > 1 {
            let all = if namers.len() == 2 { "both" } else { "all" };
            reasons.push(format!("{all} name `{path}`"));
        } else if namers.len() > 1 {
            reasons.push(format!("{} name `{path}`", g.ids(&namers)));
        }
        if !inside.is_empty() {
            reasons.push(format!(
                "{} {} files in `{path}`",
                g.ids(&inside),
                if inside.len() == 1 { "names" } else { "name" }
            ));
        }
    }
    reasons
}

/// A task of the group that runs before one listed earlier, and why: it creates a path the
/// other names, or the other depends on it.
fn order_notes(g: &Grouped, members: &[usize]) -> Vec<String> {
    let tasks = g.tasks;
    let moved =
        |e: &&Edge| g.of[e.from] == g.of[e.to] && members.contains(&e.from) && e.from > e.to;
    let creates = g.edges.iter().filter(moved).filter_map(|e| match &e.why {
        Why::Creates(path) => Some(format!(
            "{} runs before {}: it creates `{path}`",
            tasks[e.from].id, tasks[e.to].id
        )),
        Why::Explicit => None,
    });
    let stated = g
        .edges
        .iter()
        .filter(moved)
        .filter(|e| e.why == Why::Explicit)
        .map(|e| {
            format!(
                "{} runs before {}, which depends on it",
                tasks[e.from].id, tasks[e.to].id
            )
        });
    creates.chain(stated).collect()
}

/// The group's tasks that name new directories other tasks fill, if any.
fn scaffold_note(g: &Grouped, members: &[usize]) -> Option<String> {
    let ours: Vec<&Scaffold> = g
        .scaffolds
        .iter()
        .filter(|s| members.contains(&s.creator))
        .collect();
    if ours.is_empty() {
        return None;
    }
    let mut creators: Vec<usize> = ours.iter().map(|s| s.creator).collect();
    creators.dedup();
    let dirs: Vec<String> = ours.iter().map(|s| format!("`{}`", s.dir)).collect();
    let one = creators.len() == 1;
    Some(format!(
        "{} {} {} that other tasks fill ({}): {} before them and {} nothing there",
        g.ids(&creators),
        if one { "names" } else { "name" },
        if dirs.len() == 1 {
            "a new directory"
        } else {
            "new directories"
        },
        dirs.join(", "),
        if one { "it runs" } else { "they run" },
        if one { "owns" } else { "own" },
    ))
}

/// The dependencies between streams, each with why: a task's dependency on a task of another
/// stream; and phases, which order streams that touch (work in one directory, or name no
/// file), the later on the earlier, when no dependency says the opposite. Dependencies that
/// others imply are left out.
fn stream_dependencies(g: &Grouped, streams: &[GroupedStream]) -> BTreeMap<(usize, usize), String> {
    let tasks = g.tasks;
    let mut deps: BTreeMap<(usize, usize), String> = BTreeMap::new();
    for e in g.edges {
        let (from, to) = (g.of[e.from], g.of[e.to]);
        if from != to {
            deps.entry((from, to))
                .or_insert_with(|| format!("{} depends on {}", tasks[e.to].id, tasks[e.from].id));
        }
    }
    let neighbourhoods: Vec<BTreeSet<&str>> = g
        .groups
        .iter()
        .map(|members| {
            members
                .iter()
                .flat_map(|&t| tasks[t].files.iter().map(|f| neighbourhood(f)))
                .collect()
        })
        .collect();
    let count = g.groups.len();
    for later in 0..count {
        for earlier in 0..count {
            if let Some(why) = phase_order(g, streams, &neighbourhoods, &deps, earlier, later) {
                deps.insert((earlier, later), why);
            }
        }
    }
    // Leave out what other dependencies imply.
    let all: Vec<(usize, usize)> = deps.keys().copied().collect();
    for &(from, to) in &all {
        let others: Vec<(usize, usize)> =
            all.iter().copied().filter(|&e| e != (from, to)).collect();
        if graph::reaches(count, &others, from, to) {
            deps.remove(&(from, to));
        }
    }
    deps
}

/// Why stream `later` waits for stream `earlier` by their phases, if it does: every phase of
/// `earlier` comes before every phase of `later`, they touch, and no dependency so far says
/// the opposite (or says it already).
fn phase_order(
    g: &Grouped,
    streams: &[GroupedStream],
    neighbourhoods: &[BTreeSet<&str>],
    deps: &BTreeMap<(usize, usize), String>,
    earlier: usize,
    later: usize,
) -> Option<String> {
    let phase_range = |i: usize| -> Option<(usize, usize)> {
        let phases = g.groups[i].iter().filter_map(|&t| g.tasks[t].phase);
        let min = phases.clone().min()?;
        Some((min, phases.max()?))
    };
    let ((_, earlier_max), (later_min, _)) = (phase_range(earlier)?, phase_range(later)?);
    if earlier_max >= later_min || deps.contains_key(&(earlier, later)) {
        return None;
    }
    let shared: Vec<&str> = neighbourhoods[earlier]
        .intersection(&neighbourhoods[later])
        .copied()
        .collect();
    let touch = streams[earlier].unassigned || streams[later].unassigned;
    if !touch && shared.is_empty() {
        return None;
    }
    let edges: Vec<(usize, usize)> = deps.keys().copied().collect();
    if graph::reaches(g.groups.len(), &edges, later, earlier) {
        return None;
    }
    let (before, after) = (
        short_phase(&g.list.phases[earlier_max].title),
        short_phase(&g.list.phases[later_min].title),
    );
    Some(if shared.is_empty() {
        let vague = if streams[earlier].unassigned {
            earlier
        } else {
            later
        };
        format!(
            "{before} comes before {after}, and {} no file",
            if vague == earlier {
                "that stream names"
            } else {
                "this stream names"
            }
        )
    } else {
        let dirs: Vec<String> = shared
            .iter()
            .map(|d| {
                if d.is_empty() {
                    "the top directory".to_string()
                } else {
                    format!("`{d}/`")
                }
            })
            .collect();
        format!(
            "{before} comes before {after}, and both work in {}",
            join_and(&dirs.iter().map(String::as_str).collect::<Vec<_>>())
        )
    })
}

/// Names every stream, each once: from its patterns, or for tasks that name no file from
/// their phase (and then its placeholder pattern from the name).
fn name_streams(g: &Grouped, streams: &mut [GroupedStream]) {
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for (i, stream) in streams.iter_mut().enumerate() {
        let candidates = if stream.unassigned {
            let phase = g.groups[i].iter().find_map(|&t| g.tasks[t].phase);
            vec![
                phase
                    .and_then(|p| slug(&phase_name(&g.list.phases[p].title)))
                    .unwrap_or_else(|| "unassigned".to_string()),
            ]
        } else {
            name_candidates(&stream.owns)
        };
        let name = unique_name(&candidates, &taken);
        taken.insert(name.clone());
        stream.name = name;
        if stream.unassigned {
            stream.owns = vec![format!("{PLACEHOLDER_DIR}/{}/**", stream.name)];
        }
    }
}

/// Whether a task's wording says it makes something new.
fn creates(text: &str) -> bool {
    let lower = text.to_lowercase();
    lower.split(|c: char| !c.is_alphanumeric()).any(|w| {
        matches!(
            w,
            "create"
                | "creates"
                | "add"
                | "adds"
                | "new"
                | "initialize"
                | "initialise"
                | "scaffold"
        )
    })
}

/// Two tasks' files collide: the same path, or one under a directory the other names.
fn conflict(a: &[String], b: &[String]) -> bool {
    a.iter().any(|x| {
        b.iter().any(|y| {
            x == y
                || (x.ends_with('/') && y.starts_with(x))
                || (y.ends_with('/') && x.starts_with(y))
        })
    })
}

/// The directory a path is in (a named directory is its own), `` for the top.
fn neighbourhood(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(dir) => dir,
        None => path.rsplit_once('/').map_or("", |(dir, _)| dir),
    }
}

/// `Phase 3: User Story 1 - Login (Priority: P1)` -> `Phase 3`; other titles as they are.
fn short_phase(title: &str) -> String {
    title
        .split_once(':')
        .map_or(title, |(head, _)| head)
        .trim()
        .to_string()
}

/// `Phase 3: User Story 1 - Login (Priority: P1)` -> `User Story 1`: what names a stream.
fn phase_name(title: &str) -> String {
    let rest = title.split_once(':').map_or(title, |(_, rest)| rest);
    let rest = rest.split(['(', '[']).next().unwrap_or(rest);
    let rest = rest.split(" - ").next().unwrap_or(rest);
    let rest = rest.trim();
    if rest.is_empty() {
        title.to_string()
    } else {
        rest.to_string()
    }
}

fn patterns(g: usize, files_of: &[BTreeSet<&str>], view: &RepoView) -> Vec<String> {
    let mine = &files_of[g];
    let covered = |file: &str| {
        mine.iter()
            .any(|f| *f == file || (f.ends_with('/') && file.starts_with(f)))
    };
    let whole = |dir: &str| {
        let prefix = format!("{dir}/");
        let others_inside = files_of.iter().enumerate().any(|(h, files)| {
            h != g
                && files
                    .iter()
                    .any(|f| f.starts_with(&prefix) || (f.ends_with('/') && prefix.starts_with(f)))
        });
        !others_inside && view.files_under(dir).all(|f| covered(f))
    };
    let mut out: BTreeSet<String> = BTreeSet::new();
    for f in mine {
        if let Some(dir) = f.strip_suffix('/') {
            out.insert(format!("{dir}/**"));
            continue;
        }
        match f.rsplit_once('/') {
            Some((dir, _)) if whole(dir) => out.insert(format!("{dir}/**")),
            _ => out.insert(f.to_string()),
        };
    }
    // Drop what another pattern of the same stream covers.
    let dirs: Vec<String> = out
        .iter()
        .filter_map(|p| p.strip_suffix("**").map(str::to_string))
        .collect();
    out.into_iter()
        .filter(|p| {
            !dirs
                .iter()
                .any(|d| p.starts_with(d.as_str()) && p.as_str() != format!("{d}**"))
        })
        .collect()
}

/// `src/models/**` -> `models`, `src-models`; `src/api/login.rs` -> `login`, `api-login`, ...
fn name_candidates(owns: &[String]) -> Vec<String> {
    let Some(first) = owns.first() else {
        return vec!["stream".into()];
    };
    let path = first.trim_end_matches("/**");
    let mut parts: Vec<&str> = path.split('/').collect();
    if let Some(last) = parts.last_mut()
        && !first.ends_with("/**")
        && let Some((stem, _)) = last.rsplit_once('.')
        && !stem.is_empty()
    {
        *last = stem;
    }
    let mut out = Vec::new();
    // `src/db/mod.rs` is about `db`.
    let generic = ["mod", "index", "lib", "__init__", "init"];
    if parts.len() > 1 && generic.contains(parts.last().expect("not empty")) {
        out.extend(slug(parts[parts.len() - 2]));
    }
    for k in (0..parts.len()).rev() {
        if let Some(name) = slug(&parts[k..].join("-")) {
            out.push(name);
        }
    }
    if out.is_empty() {
        out.push("stream".into());
    }
    out
}

fn unique_name(candidates: &[String], taken: &BTreeSet<String>) -> String {
    let ok = |name: &str| {
        !taken.contains(name)
            && name != crate::plan::RESERVED_STREAM_NAME
            && crate::plan::validate::ref_component_problem(name).is_none()
    };
    if let Some(name) = candidates.iter().find(|c| ok(c)) {
        return name.clone();
    }
    let base = &candidates[0];
    (2..)
        .map(|k| format!("{base}-{k}"))
        .find(|name| ok(name))
        .expect("some suffix is free")
}

/// Members in list order, moved only as far as dependencies among them require.
fn order_within(members: &[usize], edges: &[Edge]) -> Vec<usize> {
    let inside = |t: usize| members.contains(&t);
    let mut waiting: HashMap<usize, usize> = members.iter().map(|&t| (t, 0)).collect();
    for e in edges.iter().filter(|e| inside(e.from) && inside(e.to)) {
        *waiting.get_mut(&e.to).expect("member") += 1;
    }
    let mut ready: BinaryHeap<std::cmp::Reverse<usize>> = members
        .iter()
        .copied()
        .filter(|t| waiting[t] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut out = Vec::with_capacity(members.len());
    while let Some(std::cmp::Reverse(t)) = ready.pop() {
        out.push(t);
        for e in edges.iter().filter(|e| e.from == t && inside(e.to)) {
            let w = waiting.get_mut(&e.to).expect("member");
            *w -= 1;
            if *w == 0 {
                ready.push(std::cmp::Reverse(e.to));
            }
        }
    }
    out
}

fn reaches(n: usize, edges: &[Edge], from: usize, to: usize) -> bool {
    let pairs: Vec<(usize, usize)> = edges.iter().map(|e| (e.from, e.to)).collect();
    graph::reaches(n, &pairs, from, to)
}

fn stream_graph(count: usize, edges: &[Edge], of: &[usize]) -> Vec<Vec<usize>> {
    let mut graph = vec![Vec::new(); count];
    for e in edges {
        if of[e.from] != of[e.to] && !graph[of[e.from]].contains(&of[e.to]) {
            graph[of[e.from]].push(of[e.to]);
        }
    }
    graph
}

#[cfg(test)]
mod tests;
