//! Input -> [`Action`]: one table of key bindings ([`BINDINGS`]) that both handles keys and
//! generates the help overlay and the README's "Keys" section, so they cannot disagree.
//!
//! While a filter is being typed, printable keys go to the filter instead (see [`handle_key`]).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Action, Tab, UiState};

/// A key as the table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A character key, without Ctrl or Alt.
    Char(char),
    /// Ctrl plus a character.
    Ctrl(char),
    /// A named key.
    Code(KeyCode),
}

impl Key {
    fn matches(self, event: &KeyEvent) -> bool {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        let alt = event.modifiers.contains(KeyModifiers::ALT);
        match (self, event.code) {
            (Key::Char(want), KeyCode::Char(got)) => !ctrl && !alt && want == got,
            (Key::Ctrl(want), KeyCode::Char(got)) => ctrl && want.eq_ignore_ascii_case(&got),
            (Key::Code(want), got) => !ctrl && !alt && want == got,
            _ => false,
        }
    }
}

/// One row of the key table.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The keys, as shown to the user.
    pub label: &'static str,
    /// The keys that trigger it.
    pub keys: &'static [Key],
    /// What happens.
    pub action: Action,
    /// What it does, for the help overlay.
    pub help: &'static str,
}

/// Every key binding, in the order the help lists them.
pub const BINDINGS: &[Binding] = &[
    Binding { label: "q, Ctrl-C", keys: &[Key::Char('q'), Key::Ctrl('c')], action: Action::Quit, help: "quit" },
    Binding { label: "?", keys: &[Key::Char('?')], action: Action::ToggleHelp, help: "show or hide this help" },
    Binding { label: "Tab", keys: &[Key::Code(KeyCode::Tab)], action: Action::NextTab, help: "next view" },
    Binding {
        label: "Shift-Tab",
        keys: &[Key::Code(KeyCode::BackTab)],
        action: Action::PreviousTab,
        help: "previous view",
    },
    Binding { label: "1", keys: &[Key::Char('1')], action: Action::ShowTab(Tab::Endpoints), help: "Endpoints view" },
    Binding { label: "2", keys: &[Key::Char('2')], action: Action::ShowTab(Tab::NPlusOne), help: "N+1 view" },
    Binding { label: "3", keys: &[Key::Char('3')], action: Action::ShowTab(Tab::Queries), help: "Queries view" },
    Binding { label: "4", keys: &[Key::Char('4')], action: Action::ShowTab(Tab::Findings), help: "Findings view" },
    Binding {
        label: "Up, k",
        keys: &[Key::Code(KeyCode::Up), Key::Char('k')],
        action: Action::Up,
        help: "move up (also the wheel)",
    },
    Binding {
        label: "Down, j",
        keys: &[Key::Code(KeyCode::Down), Key::Char('j')],
        action: Action::Down,
        help: "move down (also the wheel)",
    },
    Binding { label: "PgUp", keys: &[Key::Code(KeyCode::PageUp)], action: Action::PageUp, help: "up one page" },
    Binding { label: "PgDn", keys: &[Key::Code(KeyCode::PageDown)], action: Action::PageDown, help: "down one page" },
    Binding {
        label: "Home, g",
        keys: &[Key::Code(KeyCode::Home), Key::Char('g')],
        action: Action::Home,
        help: "first row",
    },
    Binding {
        label: "End, G",
        keys: &[Key::Code(KeyCode::End), Key::Char('G')],
        action: Action::End,
        help: "last row",
    },
    Binding {
        label: "Enter",
        keys: &[Key::Code(KeyCode::Enter)],
        action: Action::Enter,
        help: "drill in; unfold N+1 row",
    },
    Binding { label: "Esc", keys: &[Key::Code(KeyCode::Esc)], action: Action::Back, help: "back; clear the filter" },
    Binding {
        label: "s, o",
        keys: &[Key::Char('s'), Key::Char('o')],
        action: Action::CycleSort,
        help: "next sort column",
    },
    Binding { label: "/", keys: &[Key::Char('/')], action: Action::StartFilter, help: "filter the lists" },
    Binding { label: "p", keys: &[Key::Char('p')], action: Action::TogglePause, help: "pause/resume the display" },
    Binding { label: "w", keys: &[Key::Char('w')], action: Action::CycleWindow, help: "window: all, 1 min, 5 min" },
    Binding { label: "c", keys: &[Key::Char('c')], action: Action::Clear, help: "clear the statistics" },
    Binding { label: "e", keys: &[Key::Char('e')], action: Action::Export, help: "export JSON + Markdown" },
    Binding { label: "a", keys: &[Key::Char('a')], action: Action::ToggleAudit, help: "instrumentation audit" },
];

/// The action for a key press, if any. Key releases and repeats of non-movement keys are ignored.
pub fn handle_key(event: &KeyEvent, ui: &UiState) -> Option<Action> {
    if event.kind == KeyEventKind::Release {
        return None;
    }
    if Key::Ctrl('c').matches(event) {
        return Some(Action::Quit);
    }
    if ui.filtering {
        return match event.code {
            KeyCode::Esc => Some(Action::FilterCancel),
            KeyCode::Enter => Some(Action::FilterDone),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char(c) if !event.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) => {
                Some(Action::FilterInput(c))
            }
            _ => None,
        };
    }
    BINDINGS.iter().find(|b| b.keys.iter().any(|k| k.matches(event))).map(|b| b.action.clone())
}

/// The key table as Markdown, as the README's "Keys" section shows it.
pub fn keys_markdown() -> String {
    let mut out = String::from("| Key | Action |\n|---|---|\n");
    for binding in BINDINGS {
        let keys: Vec<String> = binding.label.split(", ").map(|k| format!("`{k}`")).collect();
        out.push_str(&format!("| {} | {} |\n", keys.join(", "), binding.help));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn ui() -> UiState {
        UiState::new("127.0.0.1:1".parse().expect("addr"), "127.0.0.1:2".parse().expect("addr"), PathBuf::from("."))
    }

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_actions() {
        let ui = ui();
        assert_eq!(handle_key(&press(KeyCode::Char('q')), &ui), Some(Action::Quit));
        assert_eq!(handle_key(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), &ui), Some(Action::Quit));
        assert_eq!(handle_key(&press(KeyCode::Char('j')), &ui), Some(Action::Down));
        assert_eq!(handle_key(&press(KeyCode::Up), &ui), Some(Action::Up));
        assert_eq!(handle_key(&press(KeyCode::BackTab), &ui), Some(Action::PreviousTab));
        assert_eq!(handle_key(&press(KeyCode::Char('3')), &ui), Some(Action::ShowTab(Tab::Queries)));
        assert_eq!(handle_key(&press(KeyCode::Char('z')), &ui), None);
    }

    #[test]
    fn ctrl_letters_are_not_plain_letters() {
        let ui = ui();
        assert_eq!(handle_key(&KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL), &ui), None);
    }

    #[test]
    fn while_filtering_letters_go_to_the_filter() {
        let mut ui = ui();
        ui.filtering = true;
        assert_eq!(handle_key(&press(KeyCode::Char('q')), &ui), Some(Action::FilterInput('q')));
        assert_eq!(handle_key(&press(KeyCode::Esc), &ui), Some(Action::FilterCancel));
        assert_eq!(handle_key(&press(KeyCode::Enter), &ui), Some(Action::FilterDone));
        assert_eq!(handle_key(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), &ui), Some(Action::Quit));
    }

    #[test]
    fn releases_are_ignored() {
        let mut event = press(KeyCode::Char('q'));
        event.kind = KeyEventKind::Release;
        assert_eq!(handle_key(&event, &ui()), None);
    }

    #[test]
    fn no_key_is_bound_twice() {
        let keys: Vec<Key> = BINDINGS.iter().flat_map(|b| b.keys.iter().copied()).collect();
        for (i, key) in keys.iter().enumerate() {
            assert!(!keys[i + 1..].contains(key), "{key:?} is bound twice");
        }
    }

    #[test]
    fn the_help_fits_two_columns_at_80_columns() {
        let label_width = BINDINGS.iter().map(|b| b.label.len()).max().unwrap_or(0) + 2;
        for binding in BINDINGS {
            // Two columns of " label  help", one space between them, a bordered box: 80 columns.
            assert!(1 + label_width + binding.help.chars().count() <= 38, "{binding:?} is too long for the help");
        }
    }

    #[test]
    fn the_readme_lists_every_key() {
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&keys_markdown()),
            "README.md's Keys section is out of date; paste this:\n{}",
            keys_markdown()
        );
    }
}
