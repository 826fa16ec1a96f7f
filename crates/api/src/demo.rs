//! The network's documented history (DOMAIN.md "Real history to replay", seeds 000 and 004),
//! loaded through the same commands a user sends, so the demo obeys every rule of the domain.
//!
//! Facts from the seeds: the facilitators, the cafés of 28 February and 25 April 2013, the
//! Stampij!fabriek of 15 March 2013 with 150 participants and 12 ideas, the jury's top three,
//! "Hack de OR!" taken up by Utrecht, the winner coached toward a doetank, the charter, and the
//! support committee. Everything else (people's names, the doetank's dates, lessons, the pilot)
//! is invented and marked as such: invented people are called "Voorbeeld" and flagged "(fictief)".
//!
//! Each step is recorded at its date in that history, in the order it happened, not at the
//! minute the demo was loaded: time travel (`asOf`) and the log's activity per month then show
//! the network's 2013 and 2014 as researchers would study them.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use doetank_domain::aggregates::challenge::ChallengeOrigin;
use doetank_domain::aggregates::charter::Signatory;
use doetank_domain::aggregates::doetank::NewLesson;
use doetank_domain::aggregates::pilot::{Applicant, ApplicantFunction, PilotOutcome};
use doetank_domain::aggregates::reuse::ReuseSource;
use doetank_domain::*;
use doetank_store::RecordedHistory;
use uuid::Uuid;

use crate::app::{App, CommandOptions};
use crate::commands::PersonalData;
use crate::error::AppError;

/// Stable ids, so that the README and tests can name demo records.
pub fn demo_id(n: u128) -> Uuid {
    Uuid::from_u128(0x2013_0000_0000_4000_8000_0000_0000_0000 | n)
}

pub const DOETANK_2010: u128 = 0x100;
pub const DOETANK_HACK_DE_OR: u128 = 0x101;
pub const STAMPIJFABRIEK: u128 = 0x200;
pub const IDEA_2010: u128 = 0x201;
pub const IDEA_HACK_DE_OR: u128 = 0x202;
pub const IDEA_LANCEERPLATFORM: u128 = 0x203;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).single().unwrap_or_default()
}

/// Loads the history into an empty log; does nothing (and says so) when the log has events.
pub async fn load(app: &App) -> Result<bool, AppError> {
    if app.store.head_position().await? > 0 {
        tracing::info!("the log is not empty; the demo history is not loaded again");
        return Ok(false);
    }
    let o = CommandOptions { actor: "system:demo".into(), ..Default::default() };
    // Given back to the wall clock when dropped, also when a step fails.
    let mut h = app.store.record_history(at(2013, 1, 7));
    members(app, &o, &mut h).await?;
    cafes_and_stampij(app, &o, &mut h).await?;
    charter(app, &o, &mut h).await?;
    doetanks(app, &o, &mut h).await?;
    reuse(app, &o, &mut h).await?;
    drop(h);
    tracing::info!(head = app.store.head_position().await?, "demo history loaded");
    Ok(true)
}

/// (id, phase, kind, title, body, tags)
type DemoLesson = (u128, Phase, LessonKind, &'static str, &'static str, &'static [&'static str]);

/// (id, name, organisation, sector, expertise)
const PEOPLE: &[(u128, &str, &str, Sector, &[&str])] = &[
    (1, "Femke Voorbeeld (fictief)", "Kennisland", Sector::Public, &["sociale innovatie", "coaching"]),
    (2, "Joris Voorbeeld (fictief)", "Kafkabrigade", Sector::Public, &["regeldruk"]),
    (3, "Sanne Voorbeeld (fictief)", "Ministerie van BZK", Sector::Public, &["HRM", "arbeidsmarkt"]),
    (4, "Bram Voorbeeld (fictief)", "TNO", Sector::Academic, &["arbeidsproductiviteit"]),
    (5, "Noor Voorbeeld (fictief)", "Gemeente Utrecht", Sector::Public, &["medezeggenschap"]),
    (6, "Daan Voorbeeld (fictief)", "Belastingdienst", Sector::Public, &["kennisbehoud"]),
    (7, "Lotte Voorbeeld (fictief)", "Gemeente Voorbeeldstad", Sector::Public, &["jong talent"]),
    (
        8,
        "Ruben Voorbeeld (fictief)",
        "Adviesbureau Voorbeeld",
        Sector::ExternalAdviser,
        &["verandermanagement"],
    ),
    (9, "Eva Voorbeeld (fictief)", "Rijkswaterstaat", Sector::Public, &["mobiliteit van arbeid"]),
    (10, "Roel in 't Veld", "Universiteit Tilburg", Sector::Academic, &["bestuurskunde"]),
    (11, "Henk Volberda", "Erasmus Universiteit", Sector::Academic, &["innovatie"]),
    (12, "Lucas Lombaers", "Ministerie van BZK", Sector::Public, &["innovatie"]),
];

async fn members(app: &App, o: &CommandOptions, h: &mut RecordedHistory) -> Result<(), AppError> {
    h.at(at(2013, 1, 7));
    for (n, name, organisation, sector, expertise) in PEOPLE {
        let personal = PersonalData { name: (*name).into(), email: None };
        let expertise = expertise.iter().map(|s| s.to_string()).collect();
        app.register_member(o, demo_id(*n), personal, organisation, *sector, expertise).await?;
    }
    // Seed 000: the support committee of heavyweights who open doors at the top.
    h.at(at(2013, 1, 14));
    for n in [10, 11, 12] {
        app.execute::<Member>(demo_id(n), o, |m| m.appoint_to_support_committee()).await?;
    }
    Ok(())
}

async fn cafes_and_stampij(app: &App, o: &CommandOptions, h: &mut RecordedHistory) -> Result<(), AppError> {
    let cafe1 = demo_id(0x300);
    h.at(at(2013, 2, 1));
    app.execute::<Cafe>(cafe1, o, |c| {
        c.schedule(cafe1, "Slimmernetwerk Café", day(2013, 2, 28), "Amsterdam (locatie fictief)")
    })
    .await?;
    h.at(at(2013, 2, 14));
    app.execute::<Cafe>(cafe1, o, |c| {
        c.announce_workshop("Houtskoolschets van de charter voor een innovatieve overheid", "Slimmernetwerk")
    })
    .await?;
    h.at(at(2013, 2, 28));
    app.execute::<Cafe>(cafe1, o, |c| c.hold(60, day(2013, 2, 28))).await?;

    let event = demo_id(STAMPIJFABRIEK);
    h.at(at(2013, 3, 1));
    app.execute::<IdeationEvent>(event, o, |e| {
        e.schedule(
            event,
            "Stampij!fabriek",
            "Hoe kan de overheid de beste werkgever van Nederland worden?",
            day(2013, 3, 15),
            "Den Haag (locatie fictief)",
        )
    })
    .await?;
    let ideas: [(u128, &str, &str); 12] = [
        (IDEA_2010, "20/10", "Oudere werknemers gaan 20% minder werken voor 10% minder salaris en coachen nieuwe, jonge werknemers: ervaring blijft behouden, jonge ambtenaren krijgen een kans."),
        (IDEA_HACK_DE_OR, "Hack de OR!", "Jonge werknemers meer betrekken bij de ondernemingsraad."),
        (IDEA_LANCEERPLATFORM, "Lanceerplatform", "Bestaande kennis en ervaringen van projectteams sneller invliegen; wie de kennis benut, geeft de eigen kennis weer door."),
        (0x204, "Overkoepelend samenwerken (fictief uitgewerkt)", "Samenwerken over organisaties heen om complexe problemen op te lossen."),
        (0x205, "Mobiliteitspool (fictief uitgewerkt)", "Meer mobiliteit op de werkvloer door een gedeelde pool van klussen."),
        (0x206, "Jong talent aan tafel (fictief uitgewerkt)", "Jonge mensen betrekken bij besluiten over hun eigen werk."),
        (0x207, "Ruilbeurs voor vakmanschap (fictief)", "Vakmensen ruilen tijdelijk van werkplek tussen overheden."),
        (0x208, "Leren van fouten (fictief)", "Een jaarlijkse dag waarop mislukte projecten worden gedeeld."),
        (0x209, "Regelvrije dinsdag (fictief)", "Eén dag per maand werken zonder interne regels die in de weg zitten."),
        (0x20a, "Mentor op afstand (fictief)", "Gepensioneerde ambtenaren blijven online beschikbaar als mentor."),
        (0x20b, "Open agenda (fictief)", "Managers maken hun agenda zichtbaar voor het hele team."),
        (0x20c, "Werkplezier-meter (fictief)", "Teams meten maandelijks hun werkplezier en bespreken de uitkomst."),
    ];
    h.at(at(2013, 3, 15));
    for (n, title, description) in ideas {
        let idea = demo_id(n);
        app.execute::<IdeationEvent>(event, o, |e| e.submit_idea(idea, title, description, None)).await?;
    }
    for n in [IDEA_2010, IDEA_HACK_DE_OR, IDEA_LANCEERPLATFORM] {
        app.execute::<IdeationEvent>(event, o, |e| e.pitch_idea(demo_id(n), day(2013, 3, 15))).await?;
    }
    let ranking = vec![demo_id(IDEA_2010), demo_id(IDEA_HACK_DE_OR), demo_id(IDEA_LANCEERPLATFORM)];
    app.execute::<IdeationEvent>(event, o, |e| {
        e.give_jury_verdict(
            ranking.clone(),
            "20/10 test een oplossing voor vergrijzing, kennisbehoud en instroom van jonge medewerkers.",
            day(2013, 3, 15),
        )
    })
    .await?;
    app.execute::<IdeationEvent>(event, o, |e| e.conclude(150, day(2013, 3, 15))).await?;
    h.at(at(2013, 3, 25));
    app.execute::<IdeationEvent>(event, o, |e| {
        e.adopt_idea(demo_id(IDEA_HACK_DE_OR), "Gemeente Utrecht", day(2013, 3, 25))
    })
    .await?;

    // The second café of the year, after the Stampij!fabriek (seed 004).
    let cafe2 = demo_id(0x301);
    h.at(at(2013, 4, 2));
    app.execute::<Cafe>(cafe2, o, |c| {
        c.schedule(
            cafe2,
            "Tweede Slimmernetwerk Café van 2013",
            day(2013, 4, 25),
            "Den Haag (locatie fictief)",
        )
    })
    .await?;
    h.at(at(2013, 4, 10));
    app.execute::<Cafe>(cafe2, o, |c| {
        c.announce_speaker("Femke Voorbeeld (fictief)", "Van idee naar doetank: 20/10")
    })
    .await?;
    h.at(at(2013, 4, 25));
    app.execute::<Cafe>(cafe2, o, |c| c.hold(45, day(2013, 4, 25))).await?;
    Ok(())
}

async fn doetanks(app: &App, o: &CommandOptions, h: &mut RecordedHistory) -> Result<(), AppError> {
    let event = demo_id(STAMPIJFABRIEK);
    let challenge = demo_id(0x400);
    h.at(at(2013, 4, 29));
    app.execute::<Challenge>(challenge, o, |c| {
        c.raise(
            challenge,
            "Vergrijzing, kennisbehoud en instroom van jonge medewerkers",
            "Hoe houden we de ervaring van oudere ambtenaren binnen en geven we jonge ambtenaren een kans? \
             Het winnende idee van de Stampij!fabriek, 20/10, wil dat testen.",
            demo_id(3),
            ChallengeOrigin::Idea { ideation_event_id: event, idea_id: demo_id(IDEA_2010) },
        )
    })
    .await?;
    app.pledge_support(o, challenge, demo_id(6)).await?;
    app.execute::<Challenge>(challenge, o, |c| c.find_commissioner("Ministerie van BZK")).await?;

    // The winner, coached toward a doetank experiment (seed 004); its course is invented.
    let d = demo_id(DOETANK_2010);
    h.at(at(2013, 5, 1));
    app.form_doetank(o, d, "20/10", challenge, demo_id(3), &[demo_id(6), demo_id(9)], at(2013, 5, 1)).await?;
    let doetank = app.require::<Doetank>(d, "doetank").await?;
    app.execute::<IdeationEvent>(event, o, |e| {
        e.take_idea_into_doetank(demo_id(IDEA_2010), &doetank, day(2013, 5, 1))
    })
    .await?;
    h.at(at(2013, 5, 6));
    app.join_doetank(o, d, demo_id(8), at(2013, 5, 6)).await?;
    app.assign_coach(o, d, demo_id(1)).await?;
    app.execute::<Doetank>(d, o, |t| t.attach_commissioner("Ministerie van BZK")).await?;
    h.at(at(2013, 5, 13));
    let attendees = vec![demo_id(3), demo_id(6), demo_id(9), demo_id(8), demo_id(1)];
    app.hold_kickoff(o, d, day(2013, 5, 13), "Kennisland, het clubhuis", attendees, day(2013, 5, 13)).await?;
    let lessons: [DemoLesson; 6] = [
        (0x501, Phase::Discover, LessonKind::Insight, "Het probleem achter het probleem is kennisverlies",
         "Niet de vergrijzing zelf maar het ongemerkt weglekken van vakkennis bij vertrek is de kern.", &["kennisbehoud", "vergrijzing"]),
        (0x502, Phase::Research, LessonKind::Works, "Praten met HR én met de werkvloer werkt",
         "Pas toen we medewerkers zelf interviewden, kwamen de echte bezwaren tegen minder werken boven.", &["interviews", "werkvloer"]),
        (0x503, Phase::Develop, LessonKind::DoesNotWork, "Alleen via LinkedIn werven werkt niet",
         "Oproepen op LinkedIn leverden geen deelnemers op; een persoonlijke uitnodiging via het café wel.", &["werving", "linkedin"]),
        (0x504, Phase::TryOut, LessonKind::Works, "Koppels van oud en jong werken als de match klopt",
         "Koppels die zelf hun maatje kozen, hielden het coachen vol; toegewezen koppels haakten af.", &["coaching", "jong talent"]),
        (0x505, Phase::TryOut, LessonKind::DoesNotWork, "Een landelijke regeling van bovenaf werkt niet",
         "De pensioenregels zaten in de weg; zonder mandaat van de werkgever strandde de pilot bijna.", &["regels", "mandaat"]),
        (0x506, Phase::Learn, LessonKind::Insight, "Werkgevers winnen meer dan ze verliezen",
         "De 10% minder salaris woog voor werkgevers niet op tegen de behouden kennis en de snellere inwerktijd.", &["werkgeverschap", "businesscase"]),
    ];
    let phases: [(Phase, &str, (i32, u32, u32)); 6] = [
        (Phase::Discover, "Het probleem achter het probleem: kennis lekt weg bij vertrek.", (2013, 6, 3)),
        (Phase::Research, "Interviews met twintig ouderen en jongeren bij drie organisaties.", (2013, 7, 15)),
        (Phase::Develop, "Een 20/10-afspraak en een koppelmethode voor coaching.", (2013, 9, 2)),
        (
            Phase::TryOut,
            "Vijf koppels bij de Belastingdienst en Rijkswaterstaat, drie maanden lang.",
            (2013, 12, 16),
        ),
        (Phase::Learn, "De koppels evalueerden; werkgevers rekenden de businesscase door.", (2014, 2, 3)),
        (Phase::HandOver, "De businesscase ligt bij het Ministerie van BZK.", (2014, 3, 17)),
    ];
    for (phase, summary, (y, m, dd)) in phases {
        // What a phase learned is recorded as it is completed.
        h.at(at(y, m, dd));
        for (n, lesson_phase, kind, title, body, tags) in lessons.iter().filter(|l| l.1 == phase) {
            let recorded_by = if *kind == LessonKind::Insight { demo_id(1) } else { demo_id(3) };
            let lesson = NewLesson {
                lesson_id: demo_id(*n),
                recorded_by,
                phase: Some(*lesson_phase),
                kind: *kind,
                title: (*title).into(),
                body: (*body).into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
            };
            app.execute::<Doetank>(d, o, |t| t.record_lesson(lesson.clone())).await?;
        }
        if phase == Phase::Develop {
            app.execute::<Doetank>(d, o, |t| {
                t.consult_expert("Pensioenregels", "Bram Voorbeeld (fictief), TNO")
            })
            .await?;
            app.execute::<Doetank>(d, o, |t| t.make_public()).await?;
            app.execute::<Doetank>(d, o, |t| {
                t.publish_update(
                    Channel::Linkedin,
                    "20/10 zoekt koppels van oud en jong",
                    "https://www.linkedin.com/groups/slimmernetwerk-voorbeeld",
                )
            })
            .await?;
        }
        if phase == Phase::HandOver {
            app.execute::<Doetank>(d, o, |t| {
                t.hand_over_business_case(
                    "Ministerie van BZK",
                    "Businesscase 20/10: kennisbehoud door coaching, budgetneutraal binnen drie jaar.",
                )
            })
            .await?;
        }
        app.execute::<Doetank>(d, o, |t| t.complete_phase(phase, summary, at(y, m, dd))).await?;
        // What else happened in the network before the next phase was done.
        match phase {
            Phase::Discover => hack_de_or(app, o, h).await?,
            Phase::Research => pilot_proposed(app, o, h).await?,
            Phase::Learn => pilot_concluded(app, o, h).await?,
            _ => {}
        }
    }
    h.at(at(2014, 4, 1));
    app.execute::<Doetank>(d, o, |t| {
        t.conclude(
            DoetankOutcome::Completed,
            "Klein beginnen bij drie organisaties maakte het overdraagbaar.",
            at(2014, 4, 1),
        )
    })
    .await?;
    Ok(())
}

/// "Hack de OR!" in Utrecht: still informal, under the radar (rule 5).
async fn hack_de_or(app: &App, o: &CommandOptions, h: &mut RecordedHistory) -> Result<(), AppError> {
    let event = demo_id(STAMPIJFABRIEK);
    let challenge2 = demo_id(0x401);
    h.at(at(2013, 6, 5));
    app.execute::<Challenge>(challenge2, o, |c| {
        c.raise(
            challenge2,
            "Jonge werknemers in de ondernemingsraad",
            "Jongeren zijn nauwelijks vertegenwoordigd in de OR; Hack de OR! wil dat veranderen.",
            demo_id(5),
            ChallengeOrigin::Idea { ideation_event_id: event, idea_id: demo_id(IDEA_HACK_DE_OR) },
        )
    })
    .await?;
    let d2 = demo_id(DOETANK_HACK_DE_OR);
    h.at(at(2013, 6, 10));
    app.form_doetank(
        o,
        d2,
        "Hack de OR!",
        challenge2,
        demo_id(5),
        &[demo_id(7), demo_id(2)],
        at(2013, 6, 10),
    )
    .await?;
    let doetank = app.require::<Doetank>(d2, "doetank").await?;
    app.execute::<IdeationEvent>(event, o, |e| {
        e.take_idea_into_doetank(demo_id(IDEA_HACK_DE_OR), &doetank, day(2013, 6, 10))
    })
    .await?;
    h.at(at(2013, 6, 12));
    app.assign_coach(o, d2, demo_id(4)).await?;
    h.at(at(2013, 7, 1));
    app.execute::<Doetank>(d2, o, |t| {
        t.complete_phase(
            Phase::Discover,
            "De OR vergadert op tijden dat jongeren niet kunnen.",
            at(2013, 7, 1),
        )
    })
    .await?;
    app.execute::<Doetank>(d2, o, |t| {
        t.record_lesson(NewLesson {
            lesson_id: demo_id(0x510),
            recorded_by: demo_id(5),
            phase: None,
            kind: LessonKind::Insight,
            title: "Jongeren willen wel, maar niet op dinsdagavond".into(),
            body: "Vergadertijden en lange zittingstermijnen houden jonge medewerkers buiten de ondernemingsraad.".into(),
            tags: vec!["medezeggenschap".into(), "jong talent".into()],
        })
    })
    .await?;
    Ok(())
}

/// Worked on at both cafés and the Stampij!fabriek (seed 004), published at the second café.
async fn charter(app: &App, o: &CommandOptions, h: &mut RecordedHistory) -> Result<(), AppError> {
    let charter = demo_id(0x600);
    h.at(at(2013, 4, 25));
    app.execute::<Charter>(charter, o, |c| {
        c.publish(
            charter,
            "Charter voor een innovatieve overheid",
            "Wij, publieke veranderaars, verbinden losstaande initiatieven en vergroten samen hun impact.",
            vec![
                "Slimmernetwerk".into(),
                "Kennisland".into(),
                "Kafkabrigade".into(),
                "Ministerie van BZK".into(),
                "TNO".into(),
            ],
        )
    })
    .await?;
    for signatory in [
        Signatory::Organisation { name: "Kennisland".into() },
        Signatory::Organisation { name: "Gemeente Utrecht".into() },
        Signatory::Member { member_id: demo_id(3) },
        Signatory::Member { member_id: demo_id(5) },
    ] {
        app.execute::<Charter>(charter, o, |c| c.sign(signatory.clone())).await?;
    }
    Ok(())
}

/// A Right to Challenge pilot (seed 002), proposed by a member of 20/10 while it researched;
/// the rule and its course are invented.
async fn pilot_proposed(app: &App, o: &CommandOptions, h: &mut RecordedHistory) -> Result<(), AppError> {
    let pilot = demo_id(0x700);
    h.at(at(2013, 8, 19));
    app.execute::<Pilot>(pilot, o, |p| {
        p.propose(
            pilot,
            "Declaraties van coachingsuren vereisen vooraf toestemming van twee managers (fictief)",
            "De coach declareert achteraf; het team controleert steekproefsgewijs",
            "Twee weken minder wachten voordat een 20/10-koppel kan starten",
            Applicant {
                member_id: demo_id(6),
                function: ApplicantFunction::Operational,
                in_primary_process: true,
            },
            Sector::Public,
        )
    })
    .await?;
    h.at(at(2013, 8, 26));
    app.execute::<Pilot>(pilot, o, |p| p.grant_mandate("Ministerie van BZK en de ambtenarenbonden")).await?;
    h.at(at(2013, 9, 1));
    app.execute::<Pilot>(pilot, o, |p| p.suspend_rule(day(2013, 9, 1), Some(day(2014, 3, 1)))).await?;
    Ok(())
}

/// The pilot's rule back in force: evaluated, and the rule changed for good.
async fn pilot_concluded(app: &App, o: &CommandOptions, h: &mut RecordedHistory) -> Result<(), AppError> {
    let pilot = demo_id(0x700);
    h.at(at(2014, 3, 3));
    app.execute::<Pilot>(pilot, o, |p| {
        p.evaluate("Geen misbruik gevonden; koppels startten gemiddeld twaalf dagen eerder.", day(2014, 3, 3))
    })
    .await?;
    h.at(at(2014, 3, 10));
    app.execute::<Pilot>(pilot, o, |p| p.conclude(PilotOutcome::RuleChanged, "De regel is aangepast."))
        .await?;
    Ok(())
}

/// Another organisation takes up what 20/10 learned, once it had concluded.
async fn reuse(app: &App, o: &CommandOptions, h: &mut RecordedHistory) -> Result<(), AppError> {
    let reuse = demo_id(0x800);
    h.at(at(2014, 5, 12));
    app.execute::<KnowledgeReuse>(reuse, o, |r| {
        r.reuse(
            reuse,
            "Gemeente Voorbeeldstad",
            ReuseSource::Doetank { doetank_id: demo_id(DOETANK_2010) },
            "Wij delen onze eigen ervaringen met 20/10 binnen een jaar via het Lanceerplatform.",
        )
    })
    .await?;
    Ok(())
}
