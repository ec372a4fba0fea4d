"""Page furniture that is not part of the story, in any language: bylines,
datelines, captions, image and file sizes, "Read more" and share prompts,
timestamps. Such sentences are dropped before ranking; a few lead-ins are cut
off the sentence they are glued to.
"""

from __future__ import annotations

import re

from digest.summarize.language import words

# Datelines wire services put in front of the first sentence, e.g.
# "(CNN)", "LONDON (Reuters) -", "WASHINGTON —", "Kathmandu, Nepal (CNN)".
_DATELINE = re.compile(
    r"^(?:[A-Z][\w.'’-]*(?:[ ,]+[A-Z][\w.'’-]*){0,4}\s*)?"
    r"\((?:CNN|Reuters|AP|AFP|UPI|Bloomberg|dpa|DPA|ANSA|EFE|ТАСС|РИА Новости|Интерфакс)\)"
    r"\s*(?:[-—–]\s*)?"
    r"|^[A-Z]{3,}(?:[ ,]+[A-Z]{2,}){0,3}\s+[-—–]\s+"
)
# A publisher in brackets glued to the first word: "(The Hollywood Reporter)Stan".
_PUBLISHER = re.compile(r"^\((?:[A-Z][\w.&'’-]*\s?){1,5}\)(?=\S)")
# A heading in capitals run into the sentence: "BALL OF THE CENTURY Benaud was ...".
_CAPITALS_HEADING = re.compile(r"^(?:[A-Z][A-Z'’-]+\s+){2,}(?=[A-Z][a-z])")
# Phrases some sites glue in front of a sentence; the rest of it is kept.
_LEAD_IN = re.compile(
    r"^(?:scroll down for (?:the )?videos?|click here for (?:the )?video|"
    r"watch the video|advertisement|anzeige|werbung|publicité|publicidad|реклама)\b[\s.:]*",
    re.IGNORECASE,
)
# "Read more", share and follow prompts, sign-ups and credits, per language.
_PROMPTS = (
    # English
    r"read more|read next|see also|more on this|related|share this|share on|share via"
    r"|tweet this|follow us|sign up|subscribe|click here|copyright|all rights reserved"
    r"|editing by|reporting by|additional reporting|continue reading"
    # German
    r"|weiterlesen|mehr lesen|mehr zum thema|lesen sie auch|lesen sie mehr|auch interessant"
    r"|teilen|jetzt teilen|folgen sie uns|abonnieren|zum artikel|alle rechte vorbehalten"
    # French
    r"|lire la suite|lire aussi|à lire aussi|voir aussi|en savoir plus|partager|partagez"
    r"|suivez-nous|abonnez-vous|tous droits réservés"
    # Spanish
    r"|leer más|seguir leyendo|lee también|ver también|más información|compartir|comparte"
    r"|síguenos|suscríbete|todos los derechos reservados"
    # Russian
    r"|читать далее|читать также|читайте также|подробнее|смотрите также|поделиться"
    r"|подписывайтесь|подпишитесь|все права защищены"
    # A comment counter: "Comments (12)", "Kommentare 3"
    r"|(?:comments|kommentare|commentaires|comentarios|комментарии)\s*(?:\(\d+\)|\d+)?\s*$"
)
_CREDITS = (
    r"image|picture|photo|video|source|credit|foto|bild|quelle|crédit|imagen|fuente"
    r"|фото|изображение|видео|источник"
)
_STAMPS = (
    r"published|updated|last updated|posted|veröffentlicht|aktualisiert|stand|publié"
    r"|mis à jour|publicado|actualizado|опубликовано|обновлено"
)
_FURNITURE = re.compile(
    rf"^(?:by\s[^.]{{0,60}}\.?\s*)?(?:{_STAMPS})(?:\s+(?:on|at|le|à|el|a las|am|um|в))?\s*[:\d]"
    rf"|^(?:{_PROMPTS})\b(?!-)"
    rf"|^(?:related|{_CREDITS})s?\s*:"
    r"|^\|",
    re.IGNORECASE,
)
# A credit at the end of a caption: "... (Photo: Getty Images)", "Foto: dpa".
_TRAILING_CREDIT = re.compile(rf"[(|/]\s*(?:{_CREDITS})\s*:[^)]*\)?\s*$", re.IGNORECASE)
# Bylines: "By Jane Doe for MailOnline", "Von Max Mustermann", "Автор: ...".
_BYLINE_START = re.compile(r"^(?:by|von|par|por|автор|авторы|текст)\b\s*:?\s*", re.IGNORECASE)
_BYLINE_WORDS = words(
    """and for in of the at und für von der die aus et pour de du la le y para del el и
    для из"""
)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_DIGIT = re.compile(r"\d")
_WORD_START = re.compile(r"(?<![\w'’-])[^\W\d_]")
# Image and file sizes: "360 x 640", "1920 x 1080 px", "(38,06 килобайт)", "2.4 MB".
_SIZE_WORDS = words(
    """x × х px pixel pixels kb mb gb tb kib mib gib b bytes byte kbytes octets ko mo go
    байт байта байтов кб мб гб килобайт килобайта килобайтов мегабайт мегабайта
    мегабайтов гигабайт пикс пикселей"""
)
# Timestamps: months, days, time zones and the little words around a date
# ("at", "le", "в") in five languages; digits are not words here.
_DATE_WORDS = words(
    """jan january feb february mar march apr april may jun june jul july aug august sep
    sept september oct october nov november dec december januar februar märz mai juni
    juli oktober dezember janvier février mars avril juin juillet août septembre
    octobre novembre décembre enero febrero marzo abril mayo junio julio agosto
    septiembre octubre noviembre diciembre января февраля марта апреля мая июня июля
    августа сентября октября ноября декабря январь февраль март апрель май июнь июль
    август сентябрь октябрь ноябрь декабрь monday tuesday wednesday thursday friday
    saturday sunday mon tue wed thu fri sat sun montag dienstag mittwoch donnerstag
    freitag samstag sonntag lundi mardi mercredi jeudi vendredi samedi dimanche lunes
    martes miércoles jueves viernes sábado domingo понедельник вторник среда четверг
    пятница суббота воскресенье utc gmt est edt pst pdt cet cest bst msk мск"""
)
_TIME_WORDS = _DATE_WORDS | words(
    """a m p am pm h uhr heure heures hrs ч г года год at on the of and um und à le et a
    las de del el y в и st nd rd th er"""
)
_RELATIVE_TIME = re.compile(
    r"^\s*(?:\d+|an?|one|ein(?:e|en)?|un(?:e)?|una?|hace|vor|il y a)\s*"
    r"(?:\d+\s*)?(?:seconds?|minutes?|mins?|hours?|days?|weeks?|sekunden|minuten|stunden?"
    r"|tagen?|wochen?|secondes?|heures?|jours?|semaines?|segundos?|minutos?|horas?|días?"
    r"|semanas?)\s*(?:ago)?\.?\s*$"
    r"|^\s*\d+\s*(?:секунд\w*|минут\w*|час\w*|дн\w*|день|недел\w*)\s+назад\.?\s*$",
    re.IGNORECASE,
)
# A caption, timestamp or size line is short: longer text is judged as prose.
RESIDUE_WORDS = 12
# Words that mark a picture caption: "Smith (left) and ...", "..., pictured, ...".
_CAPTION = re.compile(
    r"\bpictured\b|\((?:left|right|centre|center|above|below|top|bottom|inset|links|rechts"
    r"|oben|unten|à gauche|à droite|izquierda|derecha|слева|справа)\)"
    r"|,\s(?:left|right|centre|center|above|below)\b",
)


def strip_lead_in(sentence: str) -> str:
    """Remove a dateline or a "Scroll down for video" lead-in, keep the rest."""
    for pattern in (_DATELINE, _LEAD_IN):
        sentence = pattern.sub("", sentence, count=1)
    if sentence.startswith("("):
        sentence = _PUBLISHER.sub("", sentence, count=1)
    if sentence[:2].isupper():
        sentence = _CAPITALS_HEADING.sub("", sentence, count=1)
    return sentence.strip()


def is_furniture(sentence: str) -> bool:
    """True for what is not part of the story: bylines, "PUBLISHED:" lines,
    "Read more", share prompts, credits, image and file sizes, timestamps."""
    if _FURNITURE.match(sentence) or _RELATIVE_TIME.match(sentence):
        return True
    # A sentence with no lowercase word is a name, a date or a heading (a
    # word of a script without case, such as Japanese, counts as lowercase).
    if not any(not m.group().isupper() for m in _WORD_START.finditer(sentence)):
        return True
    if _BYLINE_START.match(sentence) and _is_byline(sentence):
        return True
    if sentence.count(" ") >= RESIDUE_WORDS:
        return False  # too long to be only a date, a size or a credit
    if _TRAILING_CREDIT.search(sentence):
        return True
    return _is_size_or_time(sentence, _WORD.findall(sentence))


def _is_byline(sentence: str) -> bool:
    words = _WORD.findall(_BYLINE_START.sub("", sentence, count=1))
    lowercase = [w for w in words if w[0].islower()]
    return len(words) <= 8 and all(w in _BYLINE_WORDS for w in lowercase)


def _is_size_or_time(sentence: str, words: list[str]) -> bool:
    """True for a line that is an image or file size, or a date and time: what
    is left once those words go is less than two words."""
    lowered = {w.lower().rstrip(".") for w in words}
    digits = _DIGIT.search(sentence) is not None
    if digits and lowered & _SIZE_WORDS and len(lowered - _SIZE_WORDS) < 2:
        return True
    # Without digits a date is only names ("Monday, March"), which the
    # capitals rule has already caught; "Sun tomorrow." is a forecast.
    return digits and len(lowered - _TIME_WORDS) < 2


def looks_like_caption(sentence: str) -> bool:
    """True when a sentence reads like a picture caption ("X, pictured, ...")."""
    return bool(_CAPTION.search(sentence.lower()))
