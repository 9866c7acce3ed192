"""``imagectl build``: plan (what to build, reuse or push, and why), then apply.

The base image is rebuilt only when the content hash of its inputs has no image in the registry yet; that image
carries the tag ``ctx-<hash>`` and the tag of the build that made it — nothing more: a build that reuses it
records which base it used in its own labels and record, so the base never collects a tag per build.
The build image is built FROM the base by digest (build argument BASE_IMAGE) and, when its Dockerfile declares
``ARG PREVIOUS_IMAGE``, with the ticket's previous build (else the environment's current image) as PREVIOUS_IMAGE:
dbt's parse of that image seeds this one's, so the build-time parse is incremental. A tag that exists with other content is refused
before anything is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from imagectl import labels as L
from imagectl.action import Action, Plan
from imagectl.build_info import ResolvedBuild, resolve_build
from imagectl.config import Config, ImageConfig
from imagectl.context_hash import context_hash, declared_args
from imagectl.errors import ConflictError, DockerError
from imagectl.labels import BuildInfo
from imagectl.namespaces import context_tag, record_tag
from imagectl.progress import Progress
from imagectl.registries._base import Registry, RepositoryChange
from imagectl.render import Result, table, v
from imagectl.report import warn
from imagectl.tag_registry import context_image, record_annotations, write_record
from imagectl.workspace import Workspace


@dataclass
class ImagePlan:
    image: str  # "base" | "build"
    repository: str
    tag: str
    reference: str  # host/repository:tag
    action: str  # "build" | "reuse" | "done" (this tag was already pushed by this same build)
    reason: str
    context_hash: str | None = None
    existing_digest: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    base_tag: str | None = None  # reuse: the build tag the base was first built as


@dataclass
class BuildPlan(Plan):
    kind = "build-plan"
    dry_run_note = "Nothing was built or pushed (--dry-run)."

    environment: str
    registry: str
    registry_host: str
    tag: str
    jira: str
    jira_source: str
    build_number: int
    commit: str
    branch: str | None
    push: bool
    images: list[ImagePlan]
    repository_changes: list[RepositoryChange]
    info: BuildInfo
    previous_image: str | None = None

    def json(self) -> dict[str, Any]:
        data = {
            k: getattr(self, k)
            for k in (
                "environment",
                "registry",
                "registry_host",
                "tag",
                "jira",
                "jira_source",
                "build_number",
                "commit",
                "branch",
                "push",
                "previous_image",
            )
        }
        data["images"] = [asdict(i) for i in self.images]
        data["repository_changes"] = [asdict(c) for c in self.repository_changes]
        return data

    def text(self) -> str:
        lines = [
            f"Plan for {self.tag} (Jira {self.jira} from {v(self.jira_source)}; build {self.build_number}; "
            f"commit {self.commit[:12] or '-'} on {v(self.branch) or 'detached HEAD'})",
            f"Registry {self.registry} ({self.registry_host}), environment {self.environment}",
        ]
        for change in self.repository_changes:
            lines.append(f"  repository {change.repository}: {change.action} ({change.detail})")
        rows = [
            [p.image, p.action, p.reference, p.reason + (f" → {p.existing_digest[:19]}" if p.existing_digest else "")] for p in self.images
        ]
        lines.append(table(["IMAGE", "ACTION", "REFERENCE", "WHY"], rows))
        if self.previous_image:
            lines.append(f"Previous build (its dbt parse is reused): {self.previous_image}")
        lines.append("Push: " + ("yes" if self.push else "no (--no-push)"))
        return "\n".join(lines)


@dataclass
class ImageResult:
    image: str
    tag: str
    reference: str
    digest: str | None
    reused: bool
    pushed: bool
    note: str = ""


@dataclass
class BuildResult(Result):
    kind = "build"

    images: list[ImageResult]
    plan: BuildPlan

    def json(self) -> dict[str, Any]:
        return {"tag": self.plan.tag, "environment": self.plan.environment, "images": [asdict(i) for i in self.images]}

    def text(self) -> str:
        rows = []
        for image in self.images:
            if image.note == "already pushed":
                state = "built, already in registry"
            elif image.reused:
                state = "reused"
            else:
                state = "built, pushed" if image.pushed else "built, not pushed"
            rows.append([image.image, image.tag, state, image.digest or "-", image.reference])
        return table(["IMAGE", "TAG", "RESULT", "DIGEST", "REFERENCE"], rows)


# -- planning -------------------------------------------------------------------------------------------------


def _existing_same_build(registry: Registry, image: ImageConfig, tag: str, info: BuildInfo) -> tuple[str | None, bool]:
    """(digest, same_build) of an existing ``tag``: same_build when its record says the same commit and build."""
    found = registry.get_manifests(image.repository, [tag, record_tag(tag)])
    manifest = found.get(tag)
    if manifest is None:
        return None, False
    annotations = record_annotations(image.repository, tag, found.get(record_tag(tag)), manifest.digest) or {}
    same = annotations.get(L.TAGGED_REVISION) == info.commit and annotations.get(L.TAGGED_BUILD) == str(info.build_number)
    return manifest.digest, same


def _plan_base(registry: Registry, image: ImageConfig, info: BuildInfo, args: dict[str, str]) -> ImagePlan:
    reference = registry.reference(image.repository, info.tag)
    digest_hash = context_hash(image.context, image.dockerfile, args)
    plan = ImagePlan(
        image="base",
        repository=image.repository,
        tag=info.tag,
        reference=reference,
        action="build",
        reason=f"no image with context {digest_hash[:12]} in {registry.name}",
        context_hash=digest_hash,
        build_args=args,
    )
    reusable, annotations = context_image(registry, image.repository, digest_hash)
    if reusable is not None:
        plan.action, plan.existing_digest = "reuse", reusable.digest
        plan.base_tag = (annotations or {}).get(L.VERSION)
        plan.reason = f"inputs unchanged (context {digest_hash[:12]}, built as {plan.base_tag or 'unknown'})"
        plan.reference = registry.reference(image.repository, context_tag(digest_hash))
    existing, same_build = _existing_same_build(registry, image, info.tag, info)
    if existing and not same_build and (reusable is None or existing != reusable.digest):
        raise _refuse_existing(registry, image, info.tag, existing)
    if existing and reusable is None:
        plan.action, plan.reason, plan.existing_digest = "done", "this build already pushed it", existing
    return plan


def _plan_image(registry: Registry, image: ImageConfig, info: BuildInfo, args: dict[str, str]) -> ImagePlan:
    reference = registry.reference(image.repository, info.tag)
    existing, same_build = _existing_same_build(registry, image, info.tag, info)
    if existing and not same_build:
        raise _refuse_existing(registry, image, info.tag, existing)
    plan = ImagePlan(
        image="build",
        repository=image.repository,
        tag=info.tag,
        reference=reference,
        action="build",
        reason="built on every run",
        build_args=args,
    )
    if existing:
        plan.action, plan.reason, plan.existing_digest = "done", "this build already pushed it", existing
    return plan


def _refuse_existing(registry: Registry, image: ImageConfig, tag: str, digest: str) -> ConflictError:
    return ConflictError(
        f"{registry.reference(image.repository, tag)} already exists ({digest[:19]}) from another commit or build",
        "tags are never moved: use a new build number (--build-number) or another Jira key",
    )


def plan_build(
    config: Config,
    environment: str,
    which: str | None,
    info: BuildInfo,
    jira_source: str,
    *,
    extra_build_args: Mapping[str, str],
    push: bool,
    registry: Registry,
    previous_image: str | None = None,
) -> BuildPlan:
    names = [which] if which else ["base", "build"]
    plans: list[ImagePlan] = []
    changes: list[RepositoryChange] = []
    for name in names:
        image = config.images[name]
        image.check_build_paths()
        if push:
            changes.extend(registry.plan_repository(image.repository))
        args = {**image.build_args, **extra_build_args}
        plans.append(_plan_base(registry, image, info, args) if name == "base" else _plan_image(registry, image, info, args))
    return BuildPlan(
        environment=environment,
        registry=registry.name,
        registry_host=registry.host,
        tag=info.tag,
        jira=info.jira,
        jira_source=jira_source,
        build_number=info.build_number,
        commit=info.commit,
        branch=info.branch,
        push=push,
        images=plans,
        repository_changes=changes,
        info=info,
        previous_image=previous_image if "build" in names else None,
    )


PREVIOUS_BUILDS = 3  # how many earlier build numbers of the ticket are looked for (one batched read)


def previous_build_image(config: Config, environment: str, registry: Registry, info: L.BuildInfo | None = None) -> str | None:
    """The image whose dbt parse seeds this build's, digest-pinned, when the build Dockerfile can use one: the
    ticket's previous build (``DATA-1-56`` for ``DATA-1-57``: the closest code), else the environment's current
    image. Only a seed — dbt checks every file against it — so a far one costs time, never correctness."""
    image = config.images["build"]
    try:
        if "PREVIOUS_IMAGE" not in declared_args(image.dockerfile.read_text(encoding="utf-8")):
            return None
    except OSError:
        return None
    from imagectl.history import History

    try:
        if info is not None and info.tag == f"{info.jira}-{info.build_number}":
            earlier = [f"{info.jira}-{n}" for n in range(info.build_number - 1, max(0, info.build_number - 1 - PREVIOUS_BUILDS), -1)]
            found = registry.get_manifests(image.repository, earlier) if earlier else {}
            for tag in earlier:
                if tag in found:
                    return registry.reference(image.repository, digest=found[tag].digest)
        latest = History(registry, image.repository, environment).latest()
    except Exception as exc:  # noqa: BLE001 - an optimisation only: never fail a build for it
        warn(f"the previous build image was not found ({exc}); the build-time dbt parse starts from nothing")
        return None
    return registry.reference(image.repository, digest=latest.digest) if latest else None


# -- applying -------------------------------------------------------------------------------------------------


class _Builder:
    """Applies a BuildPlan image by image (kept small: one method per action)."""

    def __init__(self, config: Config, plan: BuildPlan, docker: Any, progress: Progress, registry: Registry) -> None:
        self.config, self.plan, self.docker, self.progress, self.registry = config, plan, docker, progress, registry
        self.auth = registry.docker_auth() if plan.push or any(p.action == "reuse" for p in plan.images) or plan.previous_image else None
        self.results: dict[str, ImageResult] = {}
        self.base_tag: str | None = None

    def run(self) -> BuildResult:
        if self.plan.push and self.plan.repository_changes:
            for change in self.plan.repository_changes:
                self.progress.say(f"registry {self.registry.name}: {change.action} {change.repository} ({change.detail})")
            self.registry.apply_repository(self.plan.repository_changes)
        for image_plan in self.plan.images:
            {"done": self.done, "reuse": self.reuse, "build": self.build}[image_plan.action](image_plan)
        return BuildResult(images=list(self.results.values()), plan=self.plan)

    def _reference(self, image_plan: ImagePlan, digest: str | None, tag: str | None = None) -> str:
        return self.registry.reference(image_plan.repository, tag or self.plan.tag, digest)

    def done(self, image_plan: ImagePlan) -> None:
        self.progress.say(f"{image_plan.image}: {image_plan.reference} already pushed by this build, nothing to do")
        self.results[image_plan.image] = ImageResult(
            image=image_plan.image,
            tag=self.plan.tag,
            reference=self._reference(image_plan, image_plan.existing_digest),
            digest=image_plan.existing_digest,
            reused=True,
            pushed=False,
            note="already pushed",
        )
        if image_plan.image == "base":
            self.base_tag = self.plan.tag

    def reuse(self, image_plan: ImagePlan) -> None:
        # Nothing is written for a reused base: the build image's labels and record say which base it used.
        self.progress.say(
            f"base: reusing {self.registry.reference(image_plan.repository, digest=image_plan.existing_digest)} ({image_plan.reason})"
        )
        self.base_tag = image_plan.base_tag
        self.results["base"] = ImageResult(
            "base",
            image_plan.base_tag or context_tag(image_plan.context_hash or ""),
            image_plan.reference + f"@{image_plan.existing_digest}",
            image_plan.existing_digest,
            reused=True,
            pushed=False,
        )

    def _base_for_build(self) -> tuple[str, str | None]:
        """(BASE_IMAGE build argument, base digest) for the build image; no digest for a base built but not pushed."""
        base = self.config.images["base"]
        if "base" in self.results:
            result = self.results["base"]
            if result.digest:
                return self.registry.reference(base.repository, digest=result.digest), result.digest
            return self.registry.reference(base.repository, self.plan.tag), None  # built locally with --no-push
        # Only the build image was asked for: this build's base tag, else the base built from the same inputs.
        manifest = self.registry.get_manifest(base.repository, self.plan.tag)
        if manifest is None:
            base.check_build_paths()
            manifest, annotations = context_image(
                self.registry, base.repository, context_hash(base.context, base.dockerfile, base.build_args)
            )
            self.base_tag = (annotations or {}).get(L.VERSION)
        else:
            self.base_tag = self.plan.tag
        if manifest is None:
            raise DockerError(
                f"no base image for {self.plan.tag} in registry '{self.registry.name}'",
                "run 'imagectl build base' (or 'imagectl build') first",
            )
        return self.registry.reference(base.repository, digest=manifest.digest), manifest.digest

    def _pull(self, reference: str, what: str) -> None:
        name, digest = reference.split("@", 1)
        if not self.docker.has_image(reference):
            self.progress.start(f"{what}: pulling {reference}")
            self.docker.pull(name, digest, self.auth, self.progress.event)

    def build(self, image_plan: ImagePlan) -> None:
        image = self.config.images[image_plan.image]
        args = dict(image_plan.build_args)
        if image_plan.image == "build":
            base_ref, base_digest = self._base_for_build()
            if base_digest:
                self._pull(base_ref, "base")
            args["BASE_IMAGE"] = base_ref
            if self.plan.previous_image:
                try:
                    self._pull(self.plan.previous_image, "previous build")
                    args["PREVIOUS_IMAGE"] = self.plan.previous_image
                except DockerError as exc:
                    warn(f"the previous build image could not be pulled ({exc.message}); the dbt parse starts from nothing")
            labels = L.image_labels(self.plan.info, "build", base_digest=base_digest, base_tag=self.base_tag)
            labels[L.BASE_REF] = base_ref
        else:
            labels = L.image_labels(self.plan.info, "base", context_hash=image_plan.context_hash)
        self.progress.start(f"{image_plan.image}: building {image_plan.reference}")
        try:
            image_id = self.docker.build(
                context=image.context,
                dockerfile=image.dockerfile,
                tag=image_plan.reference,
                build_args=args,
                labels=labels,
                network_mode=image.network_mode,
                on_event=self.progress.event,
            )
        except DockerError as exc:
            if not self.progress.quiet:
                exc.details = ""  # the step's output was streamed already
            raise
        if not self.plan.push:
            self.progress.say(f"{image_plan.image}: built {image_plan.reference} ({image_id[:19]}), not pushed (--no-push)")
            self.results[image_plan.image] = ImageResult(
                image=image_plan.image,
                tag=self.plan.tag,
                reference=image_plan.reference,
                digest=None,
                reused=False,
                pushed=False,
                note=image_id,  # the local image id: nothing in a registry to point at
            )
            return
        self._push(image_plan, labels)

    def _push(self, image_plan: ImagePlan, labels: dict[str, str]) -> None:
        self.progress.start(f"{image_plan.image}: pushing {image_plan.reference}")
        repository = image_plan.repository
        digest = self.docker.push(self.registry.reference(repository), self.plan.tag, self.auth, self.progress.event)
        manifest = self.registry.get_manifest(repository, self.plan.tag)
        if manifest is None or manifest.digest != digest:
            raise ConflictError(
                f"{image_plan.reference} does not hold the pushed digest {digest[:19]} after the push",
                "another build pushed the same tag at the same time; use a new build number",
            )
        if image_plan.image == "base" and image_plan.context_hash:
            ctx = context_tag(image_plan.context_hash)
            try:
                self.registry.put_manifest(repository, ctx, manifest)
                write_record(self.registry, repository, ctx, manifest, labels, self.plan.info)
            except ConflictError:
                # A concurrent build pushed the same inputs first; both images are valid, theirs keeps the ctx tag.
                self.progress.say(f"base: {ctx[:16]}… was pushed concurrently by another build; keeping it")
            self.base_tag = self.plan.tag
        write_record(self.registry, repository, self.plan.tag, manifest, labels, self.plan.info)
        self.progress.say(f"{image_plan.image}: pushed {image_plan.reference}@{digest}")
        self.results[image_plan.image] = ImageResult(
            image=image_plan.image,
            tag=self.plan.tag,
            reference=self._reference(image_plan, digest),
            digest=digest,
            reused=False,
            pushed=True,
        )


def apply_build(config: Config, plan: BuildPlan, docker: Any, progress: Progress, registry: Registry) -> BuildResult:
    return _Builder(config, plan, docker, progress, registry).run()


@dataclass(frozen=True)
class BuildRequest:
    environment: str
    which: str | None = None  # "base" or "build"; None: both
    jira: str | None = None
    build_number: str | None = None
    tag: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    no_push: bool = False


class Build(Action[BuildPlan, BuildResult]):
    """Resolve what this build is, plan it (what is built, reused or pushed, and why), then build and push."""

    def __init__(self, workspace: Workspace, request: BuildRequest, progress: Progress, resolved: ResolvedBuild | None = None) -> None:
        self.workspace, self.request, self.progress = workspace, request, progress
        self.resolved = resolved  # ci resolves the build once for its whole plan
        self.registry = workspace.env(request.environment).registry

    def plan(self) -> BuildPlan:
        config, request = self.workspace.config, self.request
        resolved = self.resolved or resolve_build(
            config, jira=request.jira, build_number=request.build_number, tag=request.tag, environ=self.workspace.environ
        )
        previous = previous_build_image(config, request.environment, self.registry, resolved.info) if request.which != "base" else None
        return plan_build(
            config,
            request.environment,
            request.which,
            resolved.info,
            resolved.jira_source,
            extra_build_args=dict(request.build_args),
            push=not request.no_push,
            registry=self.registry,
            previous_image=previous,
        )

    def apply(self, plan: BuildPlan) -> BuildResult:
        from imagectl.adapters.docker_engine import DockerEngine  # only a real build needs the engine

        return apply_build(self.workspace.config, plan, DockerEngine(), self.progress, registry=self.registry)
