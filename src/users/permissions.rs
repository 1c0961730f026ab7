//! Who may do what to users: one named policy, in the spirit of DRF's permission classes
//! (`IsAuthenticated`, `IsStaff`, `IsSuperuser`, `IsSelfOrStaff`). Handlers apply the coarse
//! part through extractor types; the change service (`users::changes`) applies all of it to
//! every change, whichever door it comes through, for the [`Actor`] that asks.

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

/// Whether a record carries the staff or superuser flag. Such a record is the superusers'
/// alone to change: whoever signs in with Kakao under its email gets those flags (an unclaimed,
/// pre-provisioned staff record is claimed that way), so a staff member who could change its
/// email could hand a staff account to anyone.
pub fn is_raised(user: &User) -> bool {
    user.is_staff || user.is_superuser
}

/// The fields a role may change on a record it may touch at all: members their own name and
/// age; staff also the email and active flag (of members); superusers every field.
pub fn role_fields(role: Role) -> Vec<UserField> {
    match role {
        Role::Member => vec![UserField::Name, UserField::Age],
        Role::Staff => vec![
            UserField::Name,
            UserField::Age,
            UserField::Email,
            UserField::IsActive,
        ],
        Role::Superuser => UserField::ALL.to_vec(),
    }
}

/// The fields `actor` may change on `target`: self may change name and age; staff also the
/// email and active flag of members; superusers everything of everyone. Staff who are not
/// superusers cannot change a staff or superuser record (their own included) beyond their own
/// name and age.
pub fn editable_fields(actor: &User, target: &User) -> Vec<UserField> {
    if !actor.is_active {
        return Vec::new();
    }
    let is_self = actor.id == target.id;
    let role = Role::of(actor);
    if is_raised(target) && role != Role::Superuser {
        return if is_self {
            role_fields(Role::Member)
        } else {
            Vec::new()
        };
    }
    if is_self || role != Role::Member {
        role_fields(role)
    } else {
        Vec::new()
    }
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

/// May `actor` sign `target` out everywhere or (de)activate them? Staff may manage members;
/// staff and superuser records are for superusers.
pub fn can_manage(actor: &User, target: &User) -> bool {
    Permission::IsStaff.allows(actor)
        && (!is_raised(target) || Permission::IsSuperuser.allows(actor))
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

/// The door a signed-in person's change came through (recorded in the audit log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// The JSON API under `/api/`.
    Api,
    /// The staff admin pages under `/admin/`.
    Admin,
    /// The person's own profile page.
    Profile,
}

/// Who asks for a change. Every change names one, and it is written into the change's audit row.
#[derive(Clone, Debug)]
pub enum Actor {
    /// A signed-in person (themself, staff or a superuser), through one of the doors.
    User(User, Door),
    /// The person signing in with Kakao, who is also the one changed: a sign-up, or claiming
    /// a pre-provisioned account by its verified email. Sign-in never raises flags.
    KakaoSignIn,
    /// The operator at the command line: may do anything the rules allow (the user manager's
    /// rules and the last-superuser guard still hold).
    Cli,
    /// Kakao itself (its webhooks): may end a person's sessions and (de)activate them, nothing else.
    Kakao,
}

impl Actor {
    /// The signed-in person behind this actor, if there is one.
    pub fn user(&self) -> Option<&User> {
        match self {
            Actor::User(user, _) => Some(user),
            _ => None,
        }
    }

    /// Which door, as the audit log's `via` column spells it.
    pub fn via(&self) -> &'static str {
        match self {
            Actor::User(_, Door::Api) => "api",
            Actor::User(_, Door::Admin) => "admin",
            Actor::User(_, Door::Profile) => "profile",
            Actor::KakaoSignIn => "kakao_login",
            Actor::Cli => "cli",
            Actor::Kakao => "kakao",
        }
    }

    /// May this actor see user `target_id` (others' records are not even confirmed to exist)?
    pub fn may_view(&self, target_id: i64) -> bool {
        match self {
            Actor::User(user, _) => can_view(user, target_id),
            Actor::Cli | Actor::Kakao | Actor::KakaoSignIn => true,
        }
    }

    /// The fields this actor may change on `target`.
    pub fn editable_fields(&self, target: &User) -> Vec<UserField> {
        match self {
            Actor::User(user, _) => editable_fields(user, target),
            Actor::Cli => UserField::ALL.to_vec(),
            Actor::Kakao => vec![UserField::IsActive],
            Actor::KakaoSignIn => Vec::new(),
        }
    }

    /// May this actor create a user of `role`?
    pub fn may_create(&self, role: Role) -> bool {
        match self {
            Actor::User(user, _) => can_create(user, role),
            Actor::Cli => true,
            // Sign-up through Kakao has its own path (members only); Kakao creates no one.
            Actor::KakaoSignIn | Actor::Kakao => false,
        }
    }

    /// May this actor delete `target`? Superusers; and people leaving, from their own doors
    /// (the profile or the API: the admin deletes for superusers only).
    pub fn may_delete(&self, target: &User) -> bool {
        match self {
            Actor::User(user, door) => {
                user.is_active
                    && (can_delete(user) || (user.id == target.id && *door != Door::Admin))
            }
            Actor::Cli => true,
            Actor::KakaoSignIn | Actor::Kakao => false,
        }
    }

    /// May this actor end every session of `target`?
    pub fn may_end_sessions(&self, target: &User) -> bool {
        match self {
            Actor::User(user, _) => {
                (user.is_active && user.id == target.id) || can_manage(user, target)
            }
            Actor::Cli | Actor::Kakao => true,
            Actor::KakaoSignIn => false,
        }
    }

    /// May this actor set a break-glass password? Only the operator, on the server.
    pub fn may_set_password(&self) -> bool {
        matches!(self, Actor::Cli)
    }
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
            session_epoch: 0,
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
        let other_staff = user(8, true, false);
        assert!(
            editable_fields(&staff, &other_staff).is_empty(),
            "staff cannot touch another staff record"
        );
        let mut unclaimed_staff = user(7, true, false);
        unclaimed_staff.provider = "local".into();
        assert!(
            editable_fields(&staff, &unclaimed_staff).is_empty(),
            "nor hand an unclaimed staff record to someone else by its email"
        );
        assert_eq!(
            editable_fields(&staff, &staff),
            vec![Name, Age],
            "staff keep their own email: changing it would hand their flags to its owner"
        );
        assert_eq!(
            editable_fields(&root, &other_staff),
            UserField::ALL.to_vec()
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
        assert!(!can_manage(&staff, &user(8, true, false)));
        assert!(can_manage(&root, &root));
        assert!(!can_manage(&member, &member));
    }

    #[test]
    fn each_actor_gets_its_own_share() {
        let member = user(1, false, false);
        let staff = user(2, true, false);
        let root = user(3, true, true);
        let as_member = Actor::User(member.clone(), Door::Profile);
        assert!(as_member.may_delete(&member), "people may leave");
        assert!(!as_member.may_delete(&staff));
        assert!(as_member.may_end_sessions(&member));
        assert!(!as_member.may_end_sessions(&staff));
        assert!(!Actor::User(staff.clone(), Door::Admin).may_delete(&member));
        assert!(
            !Actor::User(staff.clone(), Door::Admin).may_delete(&staff),
            "the admin deletes for superusers only, even one's own record"
        );
        assert!(Actor::User(staff.clone(), Door::Api).may_delete(&staff));
        assert!(Actor::User(root, Door::Api).may_delete(&staff));
        assert!(Actor::Cli.may_create(Role::Superuser) && Actor::Cli.may_set_password());
        assert!(!Actor::User(staff, Door::Admin).may_set_password());
        assert_eq!(
            Actor::Kakao.editable_fields(&member),
            vec![UserField::IsActive]
        );
        assert!(!Actor::Kakao.may_create(Role::Member) && !Actor::Kakao.may_delete(&member));
        assert!(Actor::KakaoSignIn.editable_fields(&member).is_empty());
        assert_eq!(
            [
                Actor::KakaoSignIn.via(),
                Actor::Cli.via(),
                Actor::Kakao.via()
            ],
            ["kakao_login", "cli", "kakao"]
        );
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
