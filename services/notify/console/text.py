"""The console's words in its four languages, durations in words, country and place names."""

from __future__ import annotations

import gettext
from datetime import timedelta
from functools import cache

import pycountry

from schemas import Scope
from schemas.config import Area, Site
from services.common.geography import Geography

LANGUAGES = ("en", "es", "fr", "pt")
LANGUAGE_NAMES = {"en": "English", "es": "Español", "fr": "Français", "pt": "Português"}

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "chart": "The values behind it",
        "chart_legend": "The line: the trigger's value at each report; dashed: its levels; "
        "shaded: while it was active, by level.",
        "chart_table": "The values as a table",
        "value": "Value",
        "chart_label": "{title}: the value at each report, with its levels",
        "deliveries": "Deliveries",
        "contact": "Contact",
        "channel": "Channel",
        "outcome": "Outcome",
        "value_shown": "Value shown",
        "alert": "Alert",
        "no_deliveries": "No deliveries match these filters.",
        "delivered": "delivered",
        "failed": "failed, will retry",
        "refused": "refused by the receiver",
        "dead": "given up (dead letter)",
        "deliveries_loading": "Still reading the delivery log: older records may be missing.",
        "silences": "Silences",
        "new_silence": "New silence",
        "silence_this": "Silence alerts like this",
        "reason": "Reason (required: everyone who lists silences reads it)",
        "duration": "For",
        "preview": "Preview",
        "would_mute": "Active alerts it would mute now: {n}",
        "create_silence": "Create the silence",
        "expire": "Expire now",
        "silence_by": "by {who}",
        "ends_in": "ends in {age}",
        "silence_ended": "silence_ended",
        "no_silences": "No silences in force.",
        "silenced_now": "Silence {id} created.",
        "expired_now": "Silence {id} expired.",
        "managers_only": "Only operators and administrators create or expire silences.",
        "reason_required": "Give a reason: it tells everyone why alerts are muted.",
        "match_rule": "Trigger",
        "match_kind": "Kind of place",
        "match_place": "Place",
        "match_country": "Country",
        "any": "Any",
        "show_ended": "Show ended silences too",
        "not_allowed": "You may not do this: {why}",
        "new": "New",
        "history": "History",
        "change": "Change",
        "when": "When (UTC)",
        "download_csv": "Download as CSV",
        "page_of": "Page {page} of {pages} ({total} transitions)",
        "previous": "Previous",
        "next": "Next",
        "no_history": "No transitions match these filters.",
        "title": "EWS console",
        "sign_in": "Sign in",
        "username": "Username",
        "password": "Password",
        "bad_credentials": "Wrong username or password.",
        "too_many": "Too many failed attempts. Try again in {wait}.",
        "sign_out": "Sign out",
        "signed_in_as": "Signed in as {name} ({role}{country})",
        "board": "Board",
        "language": "Language",
        "watch": "Watch",
        "warning": "Warning",
        "emergency": "Emergency",
        "firing": "Active",
        "resolved": "Resolved",
        "all": "All",
        "country": "Country",
        "level": "Level",
        "trigger": "Trigger",
        "status": "Status",
        "apply": "Apply filters",
        "clear": "Clear filters",
        "counts": "Active alerts by level",
        "corridors": "Corridors",
        "region": "Region-wide",
        "no_country": "No single country",
        "no_alerts": "No alerts match these filters.",
        "started": "Active for {age}",
        "ended": "Resolved {age} ago",
        "ago": "{age} ago",
        "acknowledged": "Acknowledged by {who} for {contact}, {age} ago",
        "not_acknowledged": "Not acknowledged",
        "value_against": "{value} against a threshold of {threshold}",
        "value_only": "{value}",
        "data_as_of": "Data as of {time} UTC.",
        "disconnected": "Disconnected since {time} UTC: what you see is from then, not current.",
        "loading": "Still loading alerts: the board is not complete yet.",
        "scope": "Where",
        "evidence": "Reports behind it",
        "no_evidence": "No reports are shown (withheld or none).",
        "timeline": "Timeline",
        "transition": "{level} ({status})",
        "delivery": "{channel} to {contact}: {outcome}",
        "ack_event": "{who} acknowledged for {contact}",
        "acknowledge": "Acknowledge",
        "comment": "Comment (optional)",
        "for_contact": "On behalf of",
        "withdraw": "Withdraw acknowledgement",
        "acked_now": "Acknowledged for {contact}.",
        "withdrawn_now": "Acknowledgement for {contact} withdrawn.",
        "csrf": "This form had expired and was not sent. Reload the page and try again.",
        "no_alert": "There is no such alert, or you may not see it.",
        "not_firing": "This alert is resolved: there is nothing to acknowledge.",
        "no_contacts": "You have no contact to acknowledge for.",
        "export": "Export",
        "late": "Reported late",
        "withheld": "Withheld under the sharing policy: {what}.",
        "back": "Back to the board",
        "noscript": "Reload the page to see new alerts.",
        "open": "Open",
        "map": "Map of the Americas: countries by their highest active alert level, sites with an "
        "alert as dots",
        "map_legend": "Shading: the highest active level in each country (darker is higher). "
        "Dots: sites with an alert; select one to open it. Source of shapes: Natural Earth.",
    },
    "es": {
        "chart": "Los valores en que se basa",
        "chart_legend": "La línea: el valor del disparador en cada informe; en trazos: sus "
        "niveles; sombreado: mientras estuvo activa, por nivel.",
        "chart_table": "Los valores en una tabla",
        "value": "Valor",
        "chart_label": "{title}: el valor en cada informe, con sus niveles",
        "deliveries": "Entregas",
        "contact": "Contacto",
        "channel": "Canal",
        "outcome": "Resultado",
        "value_shown": "Valor mostrado",
        "alert": "Alerta",
        "no_deliveries": "Ninguna entrega coincide con estos filtros.",
        "delivered": "entregada",
        "failed": "fallida, se reintentará",
        "refused": "rechazada por el receptor",
        "dead": "abandonada (carta muerta)",
        "deliveries_loading": "Todavía se lee el registro de entregas: pueden faltar registros "
        "antiguos.",
        "silences": "Silencios",
        "new_silence": "Nuevo silencio",
        "silence_this": "Silenciar alertas como esta",
        "reason": "Motivo (obligatorio: lo lee todo el que consulta los silencios)",
        "duration": "Durante",
        "preview": "Vista previa",
        "would_mute": "Alertas activas que silenciaría ahora: {n}",
        "create_silence": "Crear el silencio",
        "expire": "Terminar ahora",
        "silence_by": "por {who}",
        "ends_in": "termina en {age}",
        "silence_ended": "terminado",
        "no_silences": "No hay silencios vigentes.",
        "silenced_now": "Silencio {id} creado.",
        "expired_now": "Silencio {id} terminado.",
        "managers_only": "Solo operación y administración crean o terminan silencios.",
        "reason_required": "Indique un motivo: explica a todos por qué se silencian las alertas.",
        "match_rule": "Disparador",
        "match_kind": "Tipo de lugar",
        "match_place": "Lugar",
        "match_country": "País",
        "any": "Cualquiera",
        "show_ended": "Mostrar también los silencios terminados",
        "not_allowed": "No puede hacer esto: {why}",
        "new": "Nueva",
        "history": "Historial",
        "change": "Cambio",
        "when": "Cuándo (UTC)",
        "download_csv": "Descargar en CSV",
        "page_of": "Página {page} de {pages} ({total} transiciones)",
        "previous": "Anterior",
        "next": "Siguiente",
        "no_history": "Ninguna transición coincide con estos filtros.",
        "title": "Consola EWS",
        "sign_in": "Iniciar sesión",
        "username": "Usuario",
        "password": "Contraseña",
        "bad_credentials": "Usuario o contraseña incorrectos.",
        "too_many": "Demasiados intentos fallidos. Vuelva a intentarlo en {wait}.",
        "sign_out": "Cerrar sesión",
        "signed_in_as": "Sesión de {name} ({role}{country})",
        "board": "Tablero",
        "language": "Idioma",
        "watch": "Vigilancia",
        "warning": "Advertencia",
        "emergency": "Emergencia",
        "firing": "Activa",
        "resolved": "Resuelta",
        "all": "Todas",
        "country": "País",
        "level": "Nivel",
        "trigger": "Disparador",
        "status": "Estado",
        "apply": "Aplicar filtros",
        "clear": "Quitar filtros",
        "counts": "Alertas activas por nivel",
        "corridors": "Corredores",
        "region": "Toda la región",
        "no_country": "Ningún país en particular",
        "no_alerts": "Ninguna alerta coincide con estos filtros.",
        "started": "Activa desde hace {age}",
        "ended": "Resuelta hace {age}",
        "ago": "hace {age}",
        "acknowledged": "Reconocida por {who} en nombre de {contact}, hace {age}",
        "not_acknowledged": "Sin reconocer",
        "value_against": "{value} frente a un umbral de {threshold}",
        "value_only": "{value}",
        "data_as_of": "Datos de las {time} UTC.",
        "disconnected": "Sin conexión desde las {time} UTC: lo que ve es de entonces, no actual.",
        "loading": "Todavía se cargan las alertas: el tablero aún no está completo.",
        "scope": "Dónde",
        "evidence": "Informes en que se basa",
        "no_evidence": "No se muestran informes (reservados o ninguno).",
        "timeline": "Cronología",
        "transition": "{level} ({status})",
        "delivery": "{channel} a {contact}: {outcome}",
        "ack_event": "{who} la reconoció en nombre de {contact}",
        "acknowledge": "Reconocer",
        "comment": "Comentario (opcional)",
        "for_contact": "En nombre de",
        "withdraw": "Retirar el reconocimiento",
        "acked_now": "Reconocida en nombre de {contact}.",
        "withdrawn_now": "Reconocimiento de {contact} retirado.",
        "csrf": "Este formulario había caducado y no se envió. Recargue la página e inténtelo de "
        "nuevo.",
        "no_alert": "No existe esa alerta, o usted no puede verla.",
        "not_firing": "Esta alerta está resuelta: no hay nada que reconocer.",
        "no_contacts": "No tiene ningún contacto en cuyo nombre reconocer.",
        "export": "Exportar",
        "late": "Notificada con retraso",
        "withheld": "Reservado según la política de intercambio: {what}.",
        "back": "Volver al tablero",
        "noscript": "Recargue la página para ver las alertas nuevas.",
        "open": "Abrir",
        "map": "Mapa de las Américas: países según el nivel más alto de sus alertas activas, "
        "sitios con alerta como puntos",
        "map_legend": "Sombreado: el nivel activo más alto de cada país (más oscuro, más alto). "
        "Puntos: sitios con alerta; selecciónelos para abrirla. Fuente de las formas: Natural "
        "Earth.",
    },
    "fr": {
        "chart": "Les valeurs à l'origine",
        "chart_legend": "La ligne : la valeur du déclencheur à chaque rapport ; en tirets : ses "
        "niveaux ; en teinte : tant qu'elle était active, par niveau.",
        "chart_table": "Les valeurs en tableau",
        "value": "Valeur",
        "chart_label": "{title} : la valeur à chaque rapport, avec ses niveaux",
        "deliveries": "Envois",
        "contact": "Contact",
        "channel": "Canal",
        "outcome": "Résultat",
        "value_shown": "Valeur montrée",
        "alert": "Alerte",
        "no_deliveries": "Aucun envoi ne correspond à ces filtres.",
        "delivered": "remis",
        "failed": "échoué, nouvelle tentative prévue",
        "refused": "refusé par le destinataire",
        "dead": "abandonné (lettre morte)",
        "deliveries_loading": "Lecture du journal des envois en cours : des envois anciens "
        "peuvent manquer.",
        "silences": "Silences",
        "new_silence": "Nouveau silence",
        "silence_this": "Mettre en silence les alertes comme celle-ci",
        "reason": "Motif (obligatoire : tous ceux qui consultent les silences le lisent)",
        "duration": "Pendant",
        "preview": "Aperçu",
        "would_mute": "Alertes actives qu'il ferait taire maintenant : {n}",
        "create_silence": "Créer le silence",
        "expire": "Terminer maintenant",
        "silence_by": "par {who}",
        "ends_in": "se termine dans {age}",
        "silence_ended": "terminé",
        "no_silences": "Aucun silence en vigueur.",
        "silenced_now": "Silence {id} créé.",
        "expired_now": "Silence {id} terminé.",
        "managers_only": "Seuls l'exploitation et l'administration créent ou terminent des "
        "silences.",
        "reason_required": "Donnez un motif : il dit à tous pourquoi les alertes sont tues.",
        "match_rule": "Déclencheur",
        "match_kind": "Type de lieu",
        "match_place": "Lieu",
        "match_country": "Pays",
        "any": "Tous",
        "show_ended": "Afficher aussi les silences terminés",
        "not_allowed": "Vous ne pouvez pas faire ceci : {why}",
        "new": "Nouvelle",
        "history": "Historique",
        "change": "Changement",
        "when": "Quand (UTC)",
        "download_csv": "Télécharger en CSV",
        "page_of": "Page {page} sur {pages} ({total} transitions)",
        "previous": "Précédente",
        "next": "Suivante",
        "no_history": "Aucune transition ne correspond à ces filtres.",
        "title": "Console EWS",
        "sign_in": "Se connecter",
        "username": "Identifiant",
        "password": "Mot de passe",
        "bad_credentials": "Identifiant ou mot de passe incorrect.",
        "too_many": "Trop de tentatives échouées. Réessayez dans {wait}.",
        "sign_out": "Se déconnecter",
        "signed_in_as": "Connecté : {name} ({role}{country})",
        "board": "Tableau",
        "language": "Langue",
        "watch": "Veille",
        "warning": "Alerte",
        "emergency": "Urgence",
        "firing": "Active",
        "resolved": "Levée",
        "all": "Toutes",
        "country": "Pays",
        "level": "Niveau",
        "trigger": "Déclencheur",
        "status": "État",
        "apply": "Filtrer",
        "clear": "Effacer les filtres",
        "counts": "Alertes actives par niveau",
        "corridors": "Corridors",
        "region": "Toute la région",
        "no_country": "Aucun pays en particulier",
        "no_alerts": "Aucune alerte ne correspond à ces filtres.",
        "started": "Active depuis {age}",
        "ended": "Levée il y a {age}",
        "ago": "il y a {age}",
        "acknowledged": "Prise en compte par {who} pour {contact}, il y a {age}",
        "not_acknowledged": "Non prise en compte",
        "value_against": "{value} pour un seuil de {threshold}",
        "value_only": "{value}",
        "data_as_of": "Données de {time} UTC.",
        "disconnected": "Déconnecté depuis {time} UTC : ce que vous voyez date de ce moment-là.",
        "loading": "Chargement des alertes en cours : le tableau n'est pas encore complet.",
        "scope": "Où",
        "evidence": "Rapports à l'origine",
        "no_evidence": "Aucun rapport affiché (non communiqués ou aucun).",
        "timeline": "Chronologie",
        "transition": "{level} ({status})",
        "delivery": "{channel} à {contact} : {outcome}",
        "ack_event": "{who} l'a prise en compte pour {contact}",
        "acknowledge": "Prendre en compte",
        "comment": "Commentaire (facultatif)",
        "for_contact": "Au nom de",
        "withdraw": "Annuler la prise en compte",
        "acked_now": "Prise en compte pour {contact}.",
        "withdrawn_now": "Prise en compte pour {contact} annulée.",
        "csrf": "Ce formulaire avait expiré et n'a pas été envoyé. Rechargez la page et réessayez.",
        "no_alert": "Cette alerte n'existe pas, ou vous ne pouvez pas la voir.",
        "not_firing": "Cette alerte est levée : il n'y a rien à prendre en compte.",
        "no_contacts": "Vous n'avez aucun contact au nom duquel prendre en compte.",
        "export": "Exporter",
        "late": "Signalée en retard",
        "withheld": "Non communiqué selon la politique de partage : {what}.",
        "back": "Retour au tableau",
        "noscript": "Rechargez la page pour voir les nouvelles alertes.",
        "open": "Ouvrir",
        "map": "Carte des Amériques : pays selon le niveau le plus élevé de leurs alertes "
        "actives, sites en alerte en points",
        "map_legend": "Teinte : le niveau actif le plus élevé de chaque pays (plus foncé, plus "
        "élevé). Points : sites en alerte ; sélectionnez-en un pour l'ouvrir. Source des contours "
        ": Natural Earth.",
    },
    "pt": {
        "chart": "Os valores que o embasam",
        "chart_legend": "A linha: o valor do gatilho em cada relatório; tracejado: seus níveis; "
        "sombreado: enquanto esteve ativo, por nível.",
        "chart_table": "Os valores em tabela",
        "value": "Valor",
        "chart_label": "{title}: o valor em cada relatório, com seus níveis",
        "deliveries": "Entregas",
        "contact": "Contato",
        "channel": "Canal",
        "outcome": "Resultado",
        "value_shown": "Valor mostrado",
        "alert": "Alerta",
        "no_deliveries": "Nenhuma entrega corresponde a estes filtros.",
        "delivered": "entregue",
        "failed": "falhou, nova tentativa prevista",
        "refused": "recusada pelo receptor",
        "dead": "abandonada (carta morta)",
        "deliveries_loading": "Ainda lendo o registro de entregas: registros antigos podem faltar.",
        "silences": "Silêncios",
        "new_silence": "Novo silêncio",
        "silence_this": "Silenciar alertas como este",
        "reason": "Motivo (obrigatório: todos que consultam os silêncios o leem)",
        "duration": "Durante",
        "preview": "Pré-visualizar",
        "would_mute": "Alertas ativos que silenciaria agora: {n}",
        "create_silence": "Criar o silêncio",
        "expire": "Terminar agora",
        "silence_by": "por {who}",
        "ends_in": "termina em {age}",
        "silence_ended": "terminado",
        "no_silences": "Nenhum silêncio em vigor.",
        "silenced_now": "Silêncio {id} criado.",
        "expired_now": "Silêncio {id} terminado.",
        "managers_only": "Só operação e administração criam ou terminam silêncios.",
        "reason_required": "Informe um motivo: ele diz a todos por que os alertas estão "
        "silenciados.",
        "match_rule": "Gatilho",
        "match_kind": "Tipo de local",
        "match_place": "Local",
        "match_country": "País",
        "any": "Qualquer",
        "show_ended": "Mostrar também os silêncios terminados",
        "not_allowed": "Você não pode fazer isto: {why}",
        "new": "Novo",
        "history": "Histórico",
        "change": "Mudança",
        "when": "Quando (UTC)",
        "download_csv": "Baixar em CSV",
        "page_of": "Página {page} de {pages} ({total} transições)",
        "previous": "Anterior",
        "next": "Próxima",
        "no_history": "Nenhuma transição corresponde a estes filtros.",
        "title": "Console EWS",
        "sign_in": "Entrar",
        "username": "Usuário",
        "password": "Senha",
        "bad_credentials": "Usuário ou senha incorretos.",
        "too_many": "Tentativas demais sem sucesso. Tente de novo em {wait}.",
        "sign_out": "Sair",
        "signed_in_as": "Sessão de {name} ({role}{country})",
        "board": "Painel",
        "language": "Idioma",
        "watch": "Observação",
        "warning": "Aviso",
        "emergency": "Emergência",
        "firing": "Ativo",
        "resolved": "Resolvido",
        "all": "Todos",
        "country": "País",
        "level": "Nível",
        "trigger": "Gatilho",
        "status": "Situação",
        "apply": "Aplicar filtros",
        "clear": "Limpar filtros",
        "counts": "Alertas ativos por nível",
        "corridors": "Corredores",
        "region": "Toda a região",
        "no_country": "Nenhum país em particular",
        "no_alerts": "Nenhum alerta corresponde a estes filtros.",
        "started": "Ativo há {age}",
        "ended": "Resolvido há {age}",
        "ago": "há {age}",
        "acknowledged": "Reconhecido por {who} em nome de {contact}, há {age}",
        "not_acknowledged": "Não reconhecido",
        "value_against": "{value} diante de um limiar de {threshold}",
        "value_only": "{value}",
        "data_as_of": "Dados das {time} UTC.",
        "disconnected": "Sem conexão desde as {time} UTC: o que você vê é de então, não atual.",
        "loading": "Ainda carregando os alertas: o painel não está completo.",
        "scope": "Onde",
        "evidence": "Relatórios que o embasam",
        "no_evidence": "Nenhum relatório exibido (reservados ou nenhum).",
        "timeline": "Linha do tempo",
        "transition": "{level} ({status})",
        "delivery": "{channel} para {contact}: {outcome}",
        "ack_event": "{who} reconheceu em nome de {contact}",
        "acknowledge": "Reconhecer",
        "comment": "Comentário (opcional)",
        "for_contact": "Em nome de",
        "withdraw": "Retirar o reconhecimento",
        "acked_now": "Reconhecido em nome de {contact}.",
        "withdrawn_now": "Reconhecimento de {contact} retirado.",
        "csrf": "Este formulário tinha expirado e não foi enviado. Recarregue a página e tente de "
        "novo.",
        "no_alert": "Este alerta não existe, ou você não pode vê-lo.",
        "not_firing": "Este alerta está resolvido: não há nada a reconhecer.",
        "no_contacts": "Você não tem nenhum contato em cujo nome reconhecer.",
        "export": "Exportar",
        "late": "Informado com atraso",
        "withheld": "Reservado pela política de compartilhamento: {what}.",
        "back": "Voltar ao painel",
        "noscript": "Recarregue a página para ver os alertas novos.",
        "open": "Abrir",
        "map": "Mapa das Américas: países pelo nível mais alto dos seus alertas ativos, locais "
        "com alerta como pontos",
        "map_legend": "Sombreamento: o nível ativo mais alto de cada país (mais escuro, mais "
        "alto). Pontos: locais com alerta; selecione um para abri-lo. Fonte dos contornos: "
        "Natural Earth.",
    },
}

ROLES = {
    "en": {"admin": "administrator", "operator": "operator", "coordinator": "coordinator"},
    "es": {"admin": "administración", "operator": "operación", "coordinator": "coordinación"},
    "fr": {"admin": "administration", "operator": "exploitation", "coordinator": "coordination"},
    "pt": {"admin": "administração", "operator": "operação", "coordinator": "coordenação"},
}

# (one, many) for days, hours, minutes
UNITS = {
    "en": (("day", "days"), ("hour", "hours"), ("minute", "minutes"), "less than a minute"),
    "es": (("día", "días"), ("hora", "horas"), ("minuto", "minutos"), "menos de un minuto"),
    "fr": (("jour", "jours"), ("heure", "heures"), ("minute", "minutes"), "moins d'une minute"),
    "pt": (("dia", "dias"), ("hora", "horas"), ("minuto", "minutos"), "menos de um minuto"),
}
# what the sharing policy left out of an alert (SharedAlert.withheld), as a reader reads it
WITHHELD_PARTS = {
    "en": {
        "place": "the place",
        "figures": "the figures",
        "evidence": "the reports",
        "details": "the details",
        "value below floor": "a small figure",
        "details below floor": "small figures",
    },
    "es": {
        "place": "el lugar",
        "figures": "las cifras",
        "evidence": "los informes",
        "details": "los detalles",
        "value below floor": "una cifra pequeña",
        "details below floor": "cifras pequeñas",
    },
    "fr": {
        "place": "le lieu",
        "figures": "les chiffres",
        "evidence": "les rapports",
        "details": "les détails",
        "value below floor": "un petit chiffre",
        "details below floor": "de petits chiffres",
    },
    "pt": {
        "place": "o local",
        "figures": "os números",
        "evidence": "os relatórios",
        "details": "os detalhes",
        "value below floor": "um número pequeno",
        "details below floor": "números pequenos",
    },
}
AND = {"en": "and", "es": "y", "fr": "et", "pt": "e"}


def withheld_parts(parts: tuple[str, ...], language: str) -> str:
    names = WITHHELD_PARTS[language]
    return ", ".join(names.get(p, p) for p in parts)


def say(language: str, key: str, **values: object) -> str:
    return TEXT[language][key].format(**values)


def duration(span: timedelta, language: str) -> str:
    """'2 days and 3 hours', '5 horas y 20 minutos': the two largest units, in words."""
    minutes = max(0, int(span.total_seconds() // 60))
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    day, hour, minute, none = UNITS[language]
    parts = [
        f"{n} {names[0] if n == 1 else names[1]}"
        for n, names in ((days, day), (hours, hour), (minutes, minute))
        if n
    ]
    if not parts:
        return none
    return f" {AND[language]} ".join(parts[:2])


@cache
def _countries(language: str) -> gettext.NullTranslations:
    if language == "en":
        return gettext.NullTranslations()
    return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language])


# the names people use where ISO's translations give the long official form
SHORT_NAMES = {
    "BO": {"en": "Bolivia", "es": "Bolivia", "fr": "Bolivie", "pt": "Bolívia"},
    "VE": {"en": "Venezuela", "es": "Venezuela", "fr": "Venezuela", "pt": "Venezuela"},
}


def country_name(code: str | None, language: str) -> str:
    if not code:
        return TEXT[language]["no_country"]
    if code in SHORT_NAMES:
        return SHORT_NAMES[code][language]
    found = pycountry.countries.get(alpha_2=code)
    if found is None:
        return code
    name = getattr(found, "common_name", None) if language == "en" else None
    return name or _countries(language).gettext(found.name)


def place_name(scope: Scope, geography: Geography, language: str) -> str:
    """A scope as a person names it: 'Lajas Blancas (Panama)', 'Darién (Panama)', 'Panama', a
    corridor's name, or the region."""
    named: Site | Area | None = geography.sites.get(scope.id) if scope.kind == "site" else None
    named = named or (geography.areas.get(scope.id) if scope.kind == "area" else None)
    if named is not None:
        country = country_name(scope.country, language)
        return named.name if country in named.name else f"{named.name} ({country})"
    if scope.kind == "country":
        return country_name(scope.id, language)
    if scope.kind == "corridor" and scope.id in geography.corridors:
        return geography.corridors[scope.id].name
    if scope.kind == "region":
        return TEXT[language]["region"]
    return scope.id
