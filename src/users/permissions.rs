//! Who may do what to users: one named policy, shared by the JSON API and the admin pages,
//! in the spirit of DRF's permission classes (`IsAuthenticated`, `IsStaff`, `IsSuperuser`,
//! `IsSelfOrStaff`). Handlers apply it through extractor types; services re-check it.

use super::model::User;

/// A person's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Staff,
    Superuser,
}

impl Role {
    pub fn of(user: &User) -> Role {
        if user.is_superuser {
            Role::Superuser
        } else if user.is_staff {
            Role::Staff
        } else {
            Role::Member
        }
    }
}

/// The named permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Any signed-in, active user.
    IsAuthenticated,
    /// Staff (superusers are staff too).
    IsStaff,
    /// Superusers only.
    IsSuperuser,
}

impl Permission {
    pub fn allows(self, user: &User) -> bool {
        user.is_active
            && match self {
                Permission::IsAuthenticated => true,
                Permission::IsStaff => user.is_staff || user.is_superuser,
                Permission::IsSuperuser => user.is_superuser,
            }
    }
}

/// `IsSelfOrStaff`: may `actor` see the record of user `target_id`? Others' records are not
/// even confirmed to exist (the caller answers 404).
pub fn can_view(actor: &User, target_id: i64) -> bool {
    actor.id == target_id || Permission::IsStaff.allows(actor)
}

/// A field of a user that someone may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserField {
    Name,
    Age,
    Email,
    IsActive,
    IsStaff,
    IsSuperuser,
}

impl UserField {
    pub const ALL: [UserField; 6] = [
        UserField::Name,
        UserField::Age,
        UserField::Email,
        UserField::IsActive,
        UserField::IsStaff,
        UserField::IsSuperuser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserField::Name => "name",
            UserField::Age => "age",
            UserField::Email => "email",
            UserField::IsActive => "is_active",
            UserField::IsStaff => "is_staff",
            UserField::IsSuperuser => "is_superuser",
        }
    }
}

/// The fields `actor` may change on `target`: self may change name and age; staff also email
/// and the active flag of members and staff; superusers everything of everyone. Staff who are
/// not superusers cannot change a superuser's record at all.
pub fn editable_fields(actor: &User, target: &User) -> Vec<UserField> {
    if !actor.is_active {
        return Vec::new();
    }
    let mut fields = Vec::new();
    let is_self = actor.id == target.id;
    let staff = Permission::IsStaff.allows(actor);
    let superuser = Permission::IsSuperuser.allows(actor);
    if target.is_superuser && !superuser && !is_self {
        return fields;
    }
    if is_self || staff {
        fields.extend([UserField::Name, UserField::Age]);
    }
    if staff {
        fields.extend([UserField::Email, UserField::IsActive]);
    }
    if superuser {
        fields.extend([UserField::IsStaff, UserField::IsSuperuser]);
    }
    fields
}

/// May `actor` create a user of `role`? Staff create members; only superusers create staff
/// and superusers.
pub fn can_create(actor: &User, role: Role) -> bool {
    match role {
        Role::Member => Permission::IsStaff.allows(actor),
        Role::Staff | Role::Superuser => Permission::IsSuperuser.allows(actor),
    }
}

/// May `actor` delete users? Superusers only.
pub fn can_delete(actor: &User) -> bool {
    Permission::IsSuperuser.allows(actor)
}

/// May `actor` sign `target` out everywhere or (de)activate them? Staff may, except on a
/// superuser unless they are one.
pub fn can_manage(actor: &User, target: &User) -> bool {
    Permission::IsStaff.allows(actor)
        && (!target.is_superuser || Permission::IsSuperuser.allows(actor))
}

/// May `user` use the admin pages? Active staff (superusers are staff).
pub fn can_use_admin(user: &User) -> bool {
    Permission::IsStaff.allows(user)
}

/// May `user` sign in with a break-glass password when Kakao is unavailable? Active staff
/// only: the password is for running the service, not for members.
pub fn may_use_break_glass(user: &User) -> bool {
    Permission::IsStaff.allows(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, staff: bool, superuser: bool) -> User {
        User {
            id,
            email: format!("u{id}@example.com"),
            name: None,
            age: None,
            provider: "kakao".into(),
            is_active: true,
            is_staff: staff,
            is_superuser: superuser,
            date_joined: chrono::NaiveDateTime::default(),
            last_login: None,
        }
    }

    #[test]
    fn named_permissions_follow_the_flags() {
        let member = user(1, false, false);
        let staff = user(2, true, false);
        let root = user(3, true, true);
        let mut inactive_root = user(4, true, true);
        inactive_root.is_active = false;
        assert!(Permission::IsAuthenticated.allows(&member));
        assert!(!Permission::IsStaff.allows(&member));
        assert!(Permission::IsStaff.allows(&staff));
        assert!(!Permission::IsSuperuser.allows(&staff));
        assert!(Permission::IsSuperuser.allows(&root));
        for p in [
            Permission::IsAuthenticated,
            Permission::IsStaff,
            Permission::IsSuperuser,
        ] {
            assert!(
                !p.allows(&inactive_root),
                "inactive users have no permissions"
            );
        }
    }

    #[test]
    fn members_see_only_themselves() {
        let member = user(1, false, false);
        assert!(can_view(&member, 1));
        assert!(!can_view(&member, 2));
        assert!(can_view(&user(2, true, false), 1));
    }

    #[test]
    fn editable_fields_grow_with_the_role() {
        use UserField::*;
        let member = user(1, false, false);
        let other = user(9, false, false);
        let staff = user(2, true, false);
        let root = user(3, true, true);
        assert_eq!(editable_fields(&member, &member), vec![Name, Age]);
        assert!(editable_fields(&member, &other).is_empty());
        assert_eq!(
            editable_fields(&staff, &other),
            vec![Name, Age, Email, IsActive]
        );
        assert!(
            editable_fields(&staff, &root).is_empty(),
            "staff cannot touch a superuser"
        );
        assert_eq!(editable_fields(&root, &other), UserField::ALL.to_vec());
        assert_eq!(editable_fields(&root, &root), UserField::ALL.to_vec());
    }

    #[test]
    fn creating_and_deleting_need_the_right_role() {
        let member = user(1, false, false);
        let staff = user(2, true, false);
        let root = user(3, true, true);
        assert!(!can_create(&member, Role::Member));
        assert!(can_create(&staff, Role::Member));
        assert!(!can_create(&staff, Role::Staff));
        assert!(can_create(&root, Role::Superuser));
        assert!(!can_delete(&staff));
        assert!(can_delete(&root));
        assert!(can_manage(&staff, &member));
        assert!(!can_manage(&staff, &root));
        assert!(can_manage(&root, &root));
        assert!(!can_manage(&member, &member));
    }

    #[test]
    fn only_active_staff_use_the_admin_and_break_glass() {
        let member = user(1, false, false);
        let staff = user(2, true, false);
        let root = user(3, true, true);
        let mut gone = user(4, true, true);
        gone.is_active = false;
        for (u, allowed) in [
            (&member, false),
            (&staff, true),
            (&root, true),
            (&gone, false),
        ] {
            assert_eq!(can_use_admin(u), allowed, "{u:?}");
            assert_eq!(may_use_break_glass(u), allowed, "{u:?}");
        }
    }
}
