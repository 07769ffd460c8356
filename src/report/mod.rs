//! What the user sees.

mod ui;

pub use ui::Ui;
