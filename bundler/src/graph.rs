//! Builds a [`ModuleSet`] by compiling the entry points of a functions folder
//! and, transitively, every module they import.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use crate::compile::compile;
use crate::entries::discover;
use crate::error::{io_error, BundleError, ImportProblem};
use crate::module_set::{Module, ModuleKind, ModuleSet};
use crate::names::Namer;
use crate::resolve::ImportResolver;

/// `root` must be canonical so that it matches the resolver's paths.
pub(crate) fn build(root: &Path) -> Result<ModuleSet, BundleError> {
    let mut graph = Graph::new(root);
    for entry in discover(root)? {
        let name = graph.namer.name(&entry.path);
        if let Err(holder) = graph.claim(&name, &entry.path, entry.kind) {
            return Err(BundleError::NameCollision {
                name,
                first: holder,
                second: entry.path,
            });
        }
    }
    graph.compile_all()?;
    let mut modules = graph.modules;
    modules.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ModuleSet { modules })
}

struct Graph<'r> {
    namer: Namer<'r>,
    resolver: ImportResolver,
    /// Which file holds each canonical name, to catch two files sharing one.
    holders: HashMap<String, PathBuf>,
    pending: VecDeque<(String, PathBuf, ModuleKind)>,
    modules: Vec<Module>,
}

impl<'r> Graph<'r> {
    fn new(root: &'r Path) -> Self {
        Self {
            namer: Namer::new(root),
            resolver: ImportResolver::new(),
            holders: HashMap::new(),
            pending: VecDeque::new(),
            modules: Vec::new(),
        }
    }

    /// Reserves `name` for `path` and queues it for compilation, unless it is
    /// already there; fails with the current holder if another file has it.
    fn claim(&mut self, name: &str, path: &Path, kind: ModuleKind) -> Result<(), PathBuf> {
        match self.holders.get(name) {
            Some(holder) if holder == path => Ok(()),
            Some(holder) => Err(holder.clone()),
            None => {
                self.holders.insert(name.to_string(), path.to_path_buf());
                self.pending
                    .push_back((name.to_string(), path.to_path_buf(), kind));
                Ok(())
            }
        }
    }

    fn compile_all(&mut self) -> Result<(), BundleError> {
        while let Some((name, path, kind)) = self.pending.pop_front() {
            let text = fs::read_to_string(&path).map_err(io_error(&path))?;
            let source = compile(&path, &text, &mut |specifier| self.import(&path, specifier))?;
            self.modules.push(Module::new(name, source, kind));
        }
        Ok(())
    }

    fn import(&mut self, importer: &Path, specifier: &str) -> Result<String, ImportProblem> {
        let path = self.resolver.resolve(importer, specifier)?;
        let name = self.namer.name(&path);
        match self.claim(&name, &path, ModuleKind::Dependency) {
            Ok(()) => Ok(name),
            Err(holder) => Err(ImportProblem::NameTaken { name, holder }),
        }
    }
}
