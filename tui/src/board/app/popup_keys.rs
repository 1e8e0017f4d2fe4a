//! Keys while a popup is open: each popup's own keys, and the popup that follows.
use super::*;

impl App {
    pub(super) fn on_popup_key(&mut self, key: KeyEvent) {
        let popup = std::mem::replace(&mut self.popup, Popup::None);
        self.popup = match popup {
            Popup::None => Popup::None,
            Popup::Help { scroll } => match key.code {
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter => {
                    Popup::None
                }
                KeyCode::Down | KeyCode::Char('j') => Popup::Help {
                    scroll: scroll.saturating_add(1),
                },
                KeyCode::Up | KeyCode::Char('k') => Popup::Help {
                    scroll: scroll.saturating_sub(1),
                },
                _ => Popup::Help { scroll },
            },
            Popup::Pick {
                item_id,
                kind,
                mut filter,
                row,
                from_detail,
            } => {
                let choices = self.choices(kind, &item_id, filter.text());
                let back = |app: &mut App, item_id: String| {
                    if from_detail {
                        app.open_detail(item_id);
                        std::mem::replace(&mut app.popup, Popup::None)
                    } else {
                        Popup::None
                    }
                };
                match key.code {
                    KeyCode::Esc => back(self, item_id),
                    KeyCode::Enter => {
                        if let Some(choice) = choices.into_iter().nth(row) {
                            self.pick(kind, &item_id, choice.value);
                        }
                        back(self, item_id)
                    }
                    KeyCode::Up => Popup::Pick {
                        item_id,
                        kind,
                        filter,
                        row: row.saturating_sub(1),
                        from_detail,
                    },
                    KeyCode::Down => Popup::Pick {
                        item_id,
                        kind,
                        filter,
                        row: (row + 1).min(choices.len().saturating_sub(1)),
                        from_detail,
                    },
                    _ => {
                        let before = filter.text().to_string();
                        filter.on_key(key);
                        // A new filter starts at its first match.
                        let row = if filter.text() == before { row } else { 0 };
                        Popup::Pick {
                            item_id,
                            kind,
                            filter,
                            row,
                            from_detail,
                        }
                    }
                }
            }
            Popup::Activity { scroll } => match key.code {
                KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('A') => Popup::None,
                KeyCode::Down | KeyCode::Char('j') => Popup::Activity {
                    scroll: scroll.saturating_add(1),
                },
                KeyCode::Up | KeyCode::Char('k') => Popup::Activity {
                    scroll: scroll.saturating_sub(1),
                },
                KeyCode::PageDown => Popup::Activity {
                    scroll: scroll.saturating_add(self.size.1 / 2),
                },
                KeyCode::PageUp => Popup::Activity {
                    scroll: scroll.saturating_sub(self.size.1 / 2),
                },
                KeyCode::Home | KeyCode::Char('g') => Popup::Activity { scroll: 0 },
                _ => Popup::Activity { scroll },
            },
            Popup::Palette { mut filter, row } => {
                let count = self.palette(filter.text()).len();
                match key.code {
                    KeyCode::Esc => Popup::None,
                    KeyCode::Enter => {
                        match self.palette(filter.text()).into_iter().nth(row) {
                            Some(PaletteEntry::Command(command, _)) => {
                                self.popup = Popup::None;
                                self.run(command);
                                // The command may have opened a popup of its own.
                                std::mem::replace(&mut self.popup, Popup::None)
                            }
                            Some(PaletteEntry::Card(id, _)) => {
                                self.focus = Some(id);
                                Popup::None
                            }
                            None => Popup::Palette { filter, row },
                        }
                    }
                    KeyCode::Up => Popup::Palette {
                        filter,
                        row: row.saturating_sub(1),
                    },
                    KeyCode::Down => Popup::Palette {
                        filter,
                        row: (row + 1).min(count.saturating_sub(1)),
                    },
                    _ => {
                        let before = filter.text().to_string();
                        filter.on_key(key);
                        let row = if filter.text() == before { row } else { 0 };
                        Popup::Palette { filter, row }
                    }
                }
            }
            Popup::NewProject {
                mut title,
                key: mut project_key,
                on_key,
                key_typed,
            } => match key.code {
                KeyCode::Esc => Popup::None,
                KeyCode::Tab | KeyCode::BackTab => Popup::NewProject {
                    title,
                    key: project_key,
                    on_key: !on_key,
                    key_typed,
                },
                KeyCode::Enter => {
                    let checked = domain::project_key(project_key.text());
                    match (title.text().trim(), checked) {
                        ("", _) => {
                            self.say("A project needs a title".into());
                            Popup::NewProject {
                                title,
                                key: project_key,
                                on_key: false,
                                key_typed,
                            }
                        }
                        (_, Err(e)) => {
                            self.say(format!("Key: {}", e.message));
                            Popup::NewProject {
                                title,
                                key: project_key,
                                on_key: true,
                                key_typed,
                            }
                        }
                        (name, Ok(checked_key)) if !self.offline() => {
                            let req = proto::CreateProjectRequest {
                                title: name.to_string(),
                                description: None,
                                key: checked_key,
                            };
                            if let Some(id) =
                                self.transmit("New project", Payload::CreateProjectRequest(req))
                            {
                                self.pending.insert(id.clone(), "New project".into());
                                self.new_project = Some(id);
                            }
                            Popup::None
                        }
                        _ => Popup::NewProject {
                            title,
                            key: project_key,
                            on_key,
                            key_typed,
                        },
                    }
                }
                _ if on_key => {
                    project_key.on_key(key);
                    Popup::NewProject {
                        title,
                        key: project_key,
                        on_key,
                        key_typed: true,
                    }
                }
                _ => {
                    title.on_key(key);
                    if !key_typed {
                        project_key = TextInput::new(&suggested_key(title.text()));
                    }
                    Popup::NewProject {
                        title,
                        key: project_key,
                        on_key,
                        key_typed,
                    }
                }
            },
            Popup::Sprints {
                row,
                naming: Some(mut name),
            } => match key.code {
                KeyCode::Esc => Popup::Sprints { row, naming: None },
                KeyCode::Enter if name.too_long() => {
                    self.say_too_long("Sprint name", &name);
                    Popup::Sprints {
                        row,
                        naming: Some(name),
                    }
                }
                KeyCode::Enter if !name.text().trim().is_empty() => {
                    self.create_sprint(name.text().trim().to_string());
                    Popup::Sprints { row, naming: None }
                }
                _ => {
                    name.on_key(key);
                    Popup::Sprints {
                        row,
                        naming: Some(name),
                    }
                }
            },
            Popup::Sprints { row, naming: None } => {
                let sprints = self.sprints();
                let chosen = row.checked_sub(1).and_then(|i| sprints.get(i)).cloned();
                match key.code {
                    KeyCode::Esc | KeyCode::Char('q') => Popup::None,
                    KeyCode::Up | KeyCode::Char('k') => Popup::Sprints {
                        row: row.saturating_sub(1),
                        naming: None,
                    },
                    KeyCode::Down | KeyCode::Char('j') => Popup::Sprints {
                        row: (row + 1).min(sprints.len()),
                        naming: None,
                    },
                    KeyCode::Enter => {
                        self.sprint = chosen.map(|s| s.id);
                        self.row = 0;
                        Popup::None
                    }
                    KeyCode::Char('n') => Popup::Sprints {
                        row,
                        naming: Some(TextInput::with_max("", SPRINT_NAME_MAX)),
                    },
                    KeyCode::Char(c @ ('s' | 'c')) => {
                        let target = if c == 's' {
                            SprintStatus::Active
                        } else {
                            SprintStatus::Completed
                        };
                        if let Some(sprint) = chosen {
                            self.set_sprint_status(&sprint, target);
                        }
                        Popup::Sprints { row, naming: None }
                    }
                    _ => Popup::Sprints { row, naming: None },
                }
            }
            Popup::Points { item_id, mut input } => match key.code {
                KeyCode::Esc => Popup::None,
                // Nothing typed: the card has no points (any it had are cleared).
                KeyCode::Enter if input.text().trim().is_empty() => {
                    if self
                        .card(&item_id)
                        .is_some_and(|w| w.story_points.is_some())
                    {
                        let req = proto::UpdateWorkItemRequest {
                            clear_story_points: true,
                            ..Default::default()
                        };
                        self.write(&item_id, Write::change("Points", req));
                    }
                    Popup::None
                }
                KeyCode::Enter => match input.text().trim().parse::<i32>() {
                    Ok(points) if (0..=STORY_POINTS_MAX).contains(&points) => {
                        let unchanged = self
                            .card(&item_id)
                            .is_some_and(|w| w.story_points == Some(points));
                        if !unchanged {
                            let req = proto::UpdateWorkItemRequest {
                                story_points: Some(points),
                                ..Default::default()
                            };
                            self.write(&item_id, Write::change("Points", req));
                        }
                        Popup::None
                    }
                    _ => {
                        self.say(format!(
                            "Story points are a whole number from 0 to {STORY_POINTS_MAX}"
                        ));
                        Popup::Points { item_id, input }
                    }
                },
                _ => {
                    input.on_key(key);
                    Popup::Points { item_id, input }
                }
            },
            Popup::ConfirmDelete { item_id } => {
                if matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                    let card = self.replica.store.work_items.get(&item_id).cloned();
                    let req = proto::DeleteWorkItemRequest {
                        work_item_id: item_id,
                    };
                    if let Some(id) = self.transmit("Delete", Payload::DeleteWorkItemRequest(req)) {
                        self.pending.insert(id.clone(), "Delete".into());
                        if let Some(card) = card {
                            self.deletes.insert(id, card);
                        }
                    }
                }
                Popup::None
            }
            Popup::Filter { mut text } => match key.code {
                KeyCode::Enter => {
                    self.filter = text.text().trim().to_string();
                    self.row = 0;
                    Popup::None
                }
                KeyCode::Esc => Popup::None,
                _ => {
                    text.on_key(key);
                    self.filter = text.text().trim().to_string();
                    Popup::Filter { text }
                }
            },
            Popup::NewCard {
                mut title,
                item_type,
            } => match key.code {
                KeyCode::Esc => Popup::None,
                KeyCode::Tab => Popup::NewCard {
                    title,
                    item_type: next_type(item_type),
                },
                KeyCode::Enter if title.too_long() => {
                    self.say_too_long("Title", &title);
                    Popup::NewCard { title, item_type }
                }
                KeyCode::Enter if self.offline() => Popup::NewCard { title, item_type },
                KeyCode::Enter if !title.text().trim().is_empty() => {
                    self.create_card(title.text().trim().to_string(), item_type);
                    Popup::None
                }
                _ => {
                    title.on_key(key);
                    Popup::NewCard { title, item_type }
                }
            },
            Popup::EditTitle {
                item_id,
                mut title,
                base,
                started,
            } => match key.code {
                KeyCode::Esc => {
                    // An inbox entry being edited stays in the inbox.
                    self.resolving = None;
                    Popup::None
                }
                // Offline, the edit is queued (see App::write).
                KeyCode::Enter if title.too_long() => {
                    self.say_too_long("Title", &title);
                    Popup::EditTitle {
                        item_id,
                        title,
                        base,
                        started,
                    }
                }
                KeyCode::Enter if !title.text().trim().is_empty() => {
                    let title = title.text().trim().to_string();
                    if title != started {
                        self.write(
                            &item_id,
                            Write::edit(TextField::Title, title, base, started),
                        );
                    }
                    Popup::None
                }
                _ => {
                    title.on_key(key);
                    Popup::EditTitle {
                        item_id,
                        title,
                        base,
                        started,
                    }
                }
            },
            Popup::Conflict {
                item_id,
                field,
                mine,
                theirs,
            } => {
                let current = self.replica.store.work_items.get(&item_id).cloned();
                let same = |item_id, mine, theirs| Popup::Conflict {
                    item_id,
                    field,
                    mine,
                    theirs,
                };
                match (key.code, current) {
                    // The card is gone: nothing to save to; the text stays readable until Esc.
                    (KeyCode::Esc, None) => Popup::None,
                    (_, None) => same(item_id, mine, theirs),
                    (KeyCode::Char('m'), Some(card)) => {
                        let started = field.value(&card);
                        self.write(&item_id, Write::edit(field, mine, card.version, started));
                        Popup::None
                    }
                    (KeyCode::Char('t'), Some(_)) => Popup::None,
                    (KeyCode::Char('e') | KeyCode::Esc, Some(card)) => match field {
                        TextField::Title => Popup::EditTitle {
                            item_id,
                            title: TextInput::with_max(&mine, TITLE_MAX),
                            base: card.version,
                            started: card.title,
                        },
                        TextField::Description => {
                            self.open_editor(&card, mine);
                            Popup::None
                        }
                    },
                    _ => same(item_id, mine, theirs),
                }
            }
            Popup::Inbox { row } => self.on_inbox_key(key, row),
            Popup::Unsaved { request, reason } => match key.code {
                KeyCode::Char('e') => {
                    let card = self.replica.store.work_items.get(&request.item_id).cloned();
                    match (&request.target, card) {
                        // A description is edited again from the card as it is now.
                        (EditorTarget::Description { .. }, Some(card)) => {
                            self.open_editor(&card, request.text)
                        }
                        (EditorTarget::Description { .. }, None) => {
                            self.say("The card was deleted".into())
                        }
                        _ => self.editor = Some(request),
                    }
                    Popup::None
                }
                KeyCode::Esc => Popup::None,
                _ => Popup::Unsaved { request, reason },
            },
            Popup::Detail {
                item_id,
                comment: Some(mut text),
            } => match key.code {
                KeyCode::Esc => Popup::Detail {
                    item_id,
                    comment: None,
                },
                KeyCode::Enter if text.too_long() || self.offline() => {
                    if text.too_long() {
                        self.say_too_long("Comment", &text);
                    }
                    Popup::Detail {
                        item_id,
                        comment: Some(text),
                    }
                }
                KeyCode::Enter if !text.text().trim().is_empty() => {
                    let req = proto::CreateCommentRequest {
                        work_item_id: item_id.clone(),
                        content: text.text().trim().to_string(),
                    };
                    self.send("Comment", Payload::CreateCommentRequest(req));
                    Popup::Detail {
                        item_id,
                        comment: None,
                    }
                }
                _ => {
                    text.on_key(key);
                    Popup::Detail {
                        item_id,
                        comment: Some(text),
                    }
                }
            },
            Popup::Detail {
                item_id,
                comment: None,
            } => match key.code {
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => Popup::None,
                KeyCode::Char('c') => Popup::Detail {
                    item_id,
                    comment: Some(TextInput::with_max("", COMMENT_MAX)),
                },
                KeyCode::Char('E') => {
                    self.edit_description(&item_id);
                    Popup::Detail {
                        item_id,
                        comment: None,
                    }
                }
                KeyCode::Char('C') => {
                    self.editor = Some(EditorRequest {
                        item_id: item_id.clone(),
                        text: String::new(),
                        target: EditorTarget::NewComment,
                    });
                    Popup::Detail {
                        item_id,
                        comment: None,
                    }
                }
                KeyCode::Char(c @ ('b' | 'B' | 'R' | 'x' | 'M' | 'D')) => {
                    let kind = match c {
                        'b' => PickKind::Blocks,
                        'B' => PickKind::BlockedBy,
                        'R' => PickKind::RelatesTo,
                        'M' => PickKind::EditComment,
                        'D' => PickKind::DeleteComment,
                        _ => PickKind::Unlink,
                    };
                    match self.pick_popup(kind, &item_id, true) {
                        Some(popup) => popup,
                        None => Popup::Detail {
                            item_id,
                            comment: None,
                        },
                    }
                }
                KeyCode::Char('t') => {
                    self.toggle_timer(&item_id);
                    Popup::Detail {
                        item_id,
                        comment: None,
                    }
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    self.detail_scroll = self.detail_scroll.saturating_add(1);
                    Popup::Detail {
                        item_id,
                        comment: None,
                    }
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    self.detail_scroll = self.detail_scroll.saturating_sub(1);
                    Popup::Detail {
                        item_id,
                        comment: None,
                    }
                }
                _ if !self.replica.store.work_items.contains_key(&item_id) => Popup::None,
                _ => Popup::Detail {
                    item_id,
                    comment: None,
                },
            },
        };
    }
}
