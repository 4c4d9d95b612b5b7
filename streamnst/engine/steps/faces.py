"""Let faces show through (engine/faces.py). After the blend, so its memory stays all
painting. Faces are found on the host in the frame as it came in; on the device road
only their few numbers go up, and the mask is drawn there."""

from __future__ import annotations

from streamnst.engine.faces import face_mask, keep_face, keep_face_tensor, still_faces
from streamnst.engine.steps.base import Step, Work


class Faces(Step):
    name = "faces"

    def active(self, st, w: Work) -> bool:
        return st.keep_face > 0.0

    def _faces(self, w: Work):
        if w.faces is not None:
            return w.faces.present(w.image, w.size, w.motion)
        return still_faces(w.image, w.size)

    def host(self, st, w: Work) -> None:
        mask = face_mask(w.size, self._faces(w))
        source = w.work if st.face_palette is None \
            else st.face_palette(w.work, follow=w.blend is not None)
        w.out = keep_face(source, w.out, mask, st.keep_face)

    def device(self, st, w: Work) -> None:
        faces = self._faces(w)
        source = w.work if st.face_palette is None \
            else st.face_palette.on_tensor(w.work, follow=w.blend is not None)
        w.out = keep_face_tensor(source, w.out, faces, st.keep_face)


STEP = Faces()
